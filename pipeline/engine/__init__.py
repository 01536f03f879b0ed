"""The engine: build a run from a job (api), run it on Ray (runner, input_task, splits, cluster), write
on the workers (writers), read and write any filesystem (storage, parquet_read), own the run folder
(run_folder), and run a global step's Ray tasks in a bounded window (tasks). Faults, progress and
process-memory helpers serve all of these. Two layers: api and runner sit on top (they build the stages
and run the steps); the rest is the base that stages, steps and tools build on. The engine imports no
command module and no post-run tool."""
