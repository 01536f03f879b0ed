"""Pure scoring: text in, numbers and spans out. No Ray, no job config, no I/O beyond loading a model
from a path the caller gives. Every denominator is guarded; ranges are in the docstrings and in
`gristmill.schemas.columns.SCORES`."""
