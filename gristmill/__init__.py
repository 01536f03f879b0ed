"""gristmill: web-scale pretraining-data curation on Ray.

The subpackages live in the repository's top-level folders (see pyproject's package-dir):
`gristmill.schemas` (schemas/), `gristmill.filters` (filters/), `gristmill.pipeline` (pipeline/),
`gristmill.train` (train/).

The public API is re-exported lazily, so `import gristmill.train` on a GPU box with only torch and
numpy does not pull in Ray, pyarrow or pydantic.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "gristmill.pipeline.engine.api",
    "WarcSource": "gristmill.pipeline.engine.api",
    "WetSource": "gristmill.pipeline.engine.api",
    "JsonlSource": "gristmill.pipeline.engine.api",
    "ParquetSource": "gristmill.pipeline.engine.api",
    "default_stages": "gristmill.pipeline.engine.api",
    "ScoreFunction": "gristmill.pipeline.stages.custom",
    "DatatroveStep": "gristmill.pipeline.stages.datatrove_adapter",
    "ExtractText": "gristmill.pipeline.stages.extract",
    "ScoreLanguage": "gristmill.pipeline.stages.language",
    "ScoreQuality": "gristmill.pipeline.stages.quality",
    "Stage": "gristmill.pipeline.stages.base",
    "Rule": "gristmill.pipeline.stages.decide",
    "load_job": "gristmill.schemas.job",
    "ExtractConfig": "gristmill.schemas.job",
    "LanguageConfig": "gristmill.schemas.job",
    "QualityConfig": "gristmill.schemas.job",
    "TokenizeConfig": "gristmill.schemas.job",
    "ScoreToxicity": "gristmill.pipeline.stages.toxicity",
    "TagRepresentation": "gristmill.pipeline.stages.bias",
    "ToxicityConfig": "gristmill.schemas.job",
    "BiasConfig": "gristmill.schemas.job",
    "RedactPII": "gristmill.pipeline.stages.pii",
    "PiiConfig": "gristmill.schemas.job",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gristmill' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
