"""Per-batch stages: callable classes for Ray Data's `map_batches`, pyarrow Table in and out."""
