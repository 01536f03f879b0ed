"""The pipeline, grouped as the data flows: sources and crawl read the inputs; engine runs the
job on Ray (runner, api, writers, storage, the run folder); stages score and decide each batch on the
workers; steps are the global steps after the writers (classifier cut, dedup, tokenize, report counts);
lists holds the indexes the stages consult (opt-out, decontamination); tools work on a finished run
(rethreshold, takedown, export, HTML report); cli holds the command bodies; demo the embedded demo web."""
