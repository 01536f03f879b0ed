"""RedactPII: finds PII with `filters.pii` and replaces each value with its typed placeholder.

Runs after the scorers that read the original text (quality; toxicity/bias go between them) and before
the dedup signatures, so duplicates are found on the text that will be trained on. Redaction does not
depend on whether a row is still a document: every row that carries text is redacted (a page already
dropped by its language still reaches rejected/), and so are the url (credentials, e-mails), the
metadata strings and the quarantine reasons, because all of them land in a run folder. Only documents
are counted in the stats and get a `pii_count`; NER runs on documents only.

Each redaction is recorded in `text_edits` as {stage: "pii", kind: entity, start, end} with offsets in
the text before redaction; the value itself is never stored anywhere.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

import pyarrow as pa

from gristmill.filters.pii import (
    EMAIL_ADDRESS, NER_INSTALL_HINT, URL_CREDENTIALS, PiiAnalyzer, find_ner_model, redact, redact_utf8,
    resolve_overlaps,
)
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import JobError, PiiConfig

log = logging.getLogger(__name__)
STAGE_NAME = "pii"
DOCUMENTS_WITH_PII = "documents_with_pii"
BY_TYPE = "by_type:"
LONG_TEXT_CHARS = 1 << 16  # a redacted text longer than this is built as UTF-8 a block at a time


class RedactPII(Stage):
    name = STAGE_NAME
    reads = (C.TEXT,)
    writes = (C.TEXT, C.TEXT_EDITS, C.PII_COUNT, C.URL, C.METADATA, C.QUARANTINE_REASON)

    config: PiiConfig

    def __init__(self, config: PiiConfig | None = None):
        super().__init__(config or PiiConfig())
        # Resolved on the driver, so a missing model is reported before anything runs.
        self.ner_model = find_ner_model(self.config.ner_model)
        if self.config.ner_model and self.ner_model is None:
            if self.config.ner_model != "auto":
                raise JobError(f"pii.ner_model: spaCy model {self.config.ner_model!r} is not installed; "
                               f"{NER_INSTALL_HINT}, or set pii.ner_model to null")
            log.warning("pii: no spaCy model installed, PERSON/LOCATION are not redacted (NER off); %s", NER_INSTALL_HINT)
        self.entities = [*self.config.entities, *(self.config.ner_entities if self.ner_model else [])]

    def rules(self) -> list:
        from gristmill.pipeline.stages.decide import Rule

        limit = self.config.max_pii_items
        return [] if limit is None else [Rule(R.TOO_MUCH_PII, C.PII_COUNT, ">", limit)]

    def setup(self) -> None:
        self.analyzer = PiiAnalyzer(self.config.entities, self.ner_model, self.config.ner_entities,
                                    self.config.min_score, self.config.ner_batch_size)
        self.url_analyzer = PiiAnalyzer([e for e in (URL_CREDENTIALS, EMAIL_ADDRESS) if e in self.config.entities],
                                        min_score=self.config.min_score)
        self.short_analyzer = PiiAnalyzer(self.config.entities, min_score=self.config.min_score)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        active = active_mask(table).to_pylist()
        texts = table[C.TEXT].to_pylist()
        edits = table[C.TEXT_EDITS].to_pylist() if C.TEXT_EDITS in table.column_names else [None] * table.num_rows
        pii_count: list[int | None] = [None] * table.num_rows
        found = self.analyzer.analyze_batch(texts, ner_mask=active)
        for i, (text, spans) in enumerate(zip(texts, found)):
            if text is None:
                continue
            if active[i]:
                pii_count[i] = len(spans)
                counts["documents"] += 1
                counts[DOCUMENTS_WITH_PII] += bool(spans)
                counts.update(f"{BY_TYPE}{s.entity}" for s in spans)
            elif spans:
                counts["redacted_outside_documents"] += len(spans)
            if spans and self.config.redact:
                # A long text goes to Arrow as UTF-8 bytes: no second Python copy of it (see redact_utf8).
                texts[i] = redact(text, spans) if len(text) <= LONG_TEXT_CHARS else redact_utf8(text, spans)
                edits[i] = [*(edits[i] or []), *({"stage": STAGE_NAME, "kind": s.entity, "start": s.start, "end": s.end}
                                                  for s in spans)]
        table = set_column(table, C.TEXT, texts)
        table = set_column(table, C.TEXT_EDITS, edits)
        table = set_column(table, C.PII_COUNT, pii_count)
        if self.config.redact:
            table = self._redact_column(table, C.URL, self.url_analyzer, counts)
            table = self._redact_column(table, C.QUARANTINE_REASON, self.short_analyzer, counts)
            table = self._redact_metadata(table, counts)
        return table

    def _redact_text(self, analyzer: PiiAnalyzer, value: str, counts: Counter, column: str) -> str:
        spans = resolve_overlaps(analyzer.structured(value))
        if spans:
            counts[f"redacted_in:{column}"] += len(spans)
        return redact(value, spans)

    def _redact_column(self, table: pa.Table, column: str, analyzer: PiiAnalyzer, counts: Counter) -> pa.Table:
        if column not in table.column_names or not analyzer.entities:
            return table
        values = [v if v is None else self._redact_text(analyzer, v, counts, column) for v in table[column].to_pylist()]
        return set_column(table, column, values)

    def _redact_metadata(self, table: pa.Table, counts: Counter) -> pa.Table:
        """Metadata is canonical JSON (sources.base.metadata_json): redact its strings, keep it JSON."""
        if C.METADATA not in table.column_names:
            return table

        def walk(value):
            if isinstance(value, str):
                return self._redact_text(self.short_analyzer, value, counts, C.METADATA)
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, dict):
                return {walk(k): walk(v) for k, v in value.items()}
            return value

        out = []
        for raw in table[C.METADATA].to_pylist():
            if raw is None:
                out.append(None)
                continue
            try:
                parsed = json.loads(raw)
            except ValueError:
                out.append(self._redact_text(self.short_analyzer, raw, counts, C.METADATA))
                continue
            out.append(json.dumps(walk(parsed), sort_keys=True, ensure_ascii=False, default=str))
        return set_column(table, C.METADATA, out)


def pii_stats(stages: list[Stage], merged: list) -> dict | None:
    """stats.json's `pii`: {"documents_with_pii": n, "by_type": {entity: n}} over the documents the PII
    stage saw (every entity it looks for is listed, zeros included); None without a PII stage."""
    stage = next((s for s in stages if isinstance(s, RedactPII)), None)
    if stage is None:
        return None
    counts = next((m.counts for m in merged if m.stage == stage.name), Counter())
    return {
        DOCUMENTS_WITH_PII: int(counts.get(DOCUMENTS_WITH_PII, 0)),
        "by_type": {entity: int(counts.get(f"{BY_TYPE}{entity}", 0)) for entity in stage.entities},
    }
