"""gristmill: web-scale pretraining-data curation on Ray.

The subpackages live in the repository's top-level folders (see pyproject's package-dir):
`gristmill.schemas` (schemas/), `gristmill.filters` (filters/), `gristmill.pipeline` (pipeline/),
`gristmill.train` (train/).
"""

__version__ = "0.1.0"
