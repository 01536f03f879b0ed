"""The engine: build a run from a job (api), run it on Ray (runner, input_task, splits, cluster), write
on the workers (writers), read and write any filesystem (storage, parquet_read), and own the run folder
(run_folder). Faults, progress and process-memory helpers serve all of these. The engine imports no
command module and no post-run tool."""
