"""The command line: `app` is the `gristmill` command; bias, report and takedown hold the bodies of
their subcommands. Only this package imports typer; nothing outside it imports this package."""
