"""The words and turns tables prepare writes (docs/CONTRACTS.md, "Words table", "Turns table").

Both carry the same metadata (`PrepareMeta`, with ``table`` = "words" or "turns"); the words
file is written last and marks the recording done.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import pyarrow as pa

from .base import TableMeta

STAGE = "prepare"
#: bump when the tables' meaning changes, so old outputs are redone (it is part of prepare's
#: config hash); 0.1 wrote it as ``schema_version``
PREPARE_FORMAT_VERSION = 1

WORDS_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("word_index", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("word", pa.string()),
        ("probability", pa.float32()),
        ("speaker", pa.string()),
        ("is_target", pa.bool_()),
        ("asr_segment", pa.int32()),
        ("avg_logprob", pa.float32()),
        ("no_speech_prob", pa.float32()),
        ("compression_ratio", pa.float32()),
    ]
)
TURNS_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("turn_index", pa.int32()),
        ("speaker", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("is_target", pa.bool_()),
    ]
)


class PrepareMeta(TableMeta):
    """What prepare records about one recording (on its words and turns tables)."""

    FORMAT_VERSION: ClassVar[int] = PREPARE_FORMAT_VERSION
    LEGACY_KEYS: ClassVar[dict[str, str]] = {"schema_version": "format_version"}

    stage: str = STAGE
    table: Optional[str] = None
    recording_id: Optional[str] = None
    source_path: Optional[str] = None
    source_fingerprint: Optional[str] = None
    duration_s: Optional[float] = None
    input: Optional[dict[str, Any]] = None
    options: dict[str, Any] = {}
    config_hash: Optional[str] = None
    models: dict[str, Any] = {}
    target_speaker: Any = None
    speaker_choice: Optional[str] = None
    participant_detection: Optional[dict[str, Any]] = None
    speakers: list[str] = []
    text_source: Optional[dict[str, Any]] = None
    language: Optional[str] = None
    diarization: Optional[dict[str, Any]] = None
    asr: Optional[dict[str, Any]] = None
    timings_s: dict[str, float] = {}

    def for_table(self, table: str) -> "PrepareMeta":
        return self.model_copy(update={"table": table})
