"""Ray stages, sources, the decide step, writers, tokenization, the runner and the CLI."""
