"""Record sources: turn input files into rows of `columns.SOURCE_SCHEMA`, one per record."""
