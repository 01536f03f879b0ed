"""The embedded demo web: the site model and its WARC (web, with its prose in text_bank.json) and the
HTTP server that serves it to the crawler (server)."""
