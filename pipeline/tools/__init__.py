"""Post-run tools: they read a finished run folder and rewrite or render it (rethreshold, takedown,
shards export, the HTML report). The engine never imports them."""
