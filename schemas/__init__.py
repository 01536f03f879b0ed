"""Contracts every stage builds on: column names and Arrow types, drop reasons, job models, stats and
ledger, the shard format. Nothing here imports pipeline/, filters/ or train/.

Submodules are imported by name (`from gristmill.schemas import columns as C`); this package imports
nothing eagerly, so the trainer can use `schemas.shards` with numpy alone (no pydantic, no pyarrow).
"""
