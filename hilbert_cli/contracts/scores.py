"""The scores table and its parts (docs/CONTRACTS.md, "Scores table"), one schema per trained model.

One row per recording and task for a scored recording; one row with task = null and
status = "error" for a recording that failed (stage, error type and message filled in).

    recording_id   string     path relative to the input root
    task           string     task name (null on error rows)
    status         string     "ok" | "error"
    label          string     predicted class (argmax of the probabilities)
    prob_<class>   float64    one column per class name of any task (null where the row's
                              task has no such class)
    class_names    list<string>, probabilities list<float64>: the same, in the task's order
    raw_probabilities list<float64>  the model's own probabilities when label/prob_*/probabilities
                              are calibrated (the model has a calibration map); null otherwise
    n_segments     int32      segments the model saw
    duration_s     float64    recording duration
    model_id       string     trained model id (run name + weights hash)
    model_version  string     hilbert version that trained the model
    tool_version   string     hilbert version that scored
    error_stage, error_type, error_message   string (null on ok rows)
    z_a z_t z_j h_a h_t h_j  list<float32>    only with --embeddings

The column set depends only on the model (and --embeddings), so every shard of one run has
the same schema and shards concatenate without casts.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

import pyarrow as pa

from .base import TableMeta

EMBEDDING_KEYS = ("z_a", "z_t", "z_j", "h_a", "h_t", "h_j")

BASE_FIELDS = [
    ("recording_id", pa.string()),
    ("task", pa.string()),
    ("status", pa.string()),
    ("label", pa.string()),
]
TAIL_FIELDS = [
    ("class_names", pa.list_(pa.string())),
    ("probabilities", pa.list_(pa.float64())),
    ("raw_probabilities", pa.list_(pa.float64())),
    ("n_segments", pa.int32()),
    ("duration_s", pa.float64()),
    ("model_id", pa.string()),
    ("model_version", pa.string()),
    ("tool_version", pa.string()),
    ("error_stage", pa.string()),
    ("error_type", pa.string()),
    ("error_message", pa.string()),
]


def prob_column(class_name: str) -> str:
    """`prob_<class>` with anything but letters, digits, _ and - replaced by _."""
    return "prob_" + re.sub(r"[^0-9A-Za-z_\-]+", "_", str(class_name)).strip("_")


def prob_columns(classes: Mapping[str, Iterable[str]]) -> list[str]:
    """The union of every task's class columns, in first-seen order (tasks in model order)."""
    seen: dict[str, None] = {}
    for names in classes.values():
        for c in names:
            seen.setdefault(prob_column(c), None)
    return list(seen)


def scores_schema(classes: Mapping[str, Iterable[str]], embeddings: bool = False) -> pa.Schema:
    fields = list(BASE_FIELDS)
    fields += [(c, pa.float64()) for c in prob_columns(classes)]
    fields += TAIL_FIELDS
    if embeddings:
        fields += [(k, pa.list_(pa.float32())) for k in EMBEDDING_KEYS]
    return pa.schema(fields)


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts, missing keys = null) -> a table with exactly `schema`."""
    cols = {name: [r.get(name) for r in rows] for name in schema.names}
    return pa.Table.from_pydict(cols, schema=schema)


class ScorePartMeta(TableMeta):
    """One recording's score part (WORK/score/<model_key>/): done when status is ok and the
    config_hash is the run's."""

    stage: str = "score"
    config_hash: Optional[str] = None
    recording_id: Optional[str] = None
    score_config: dict[str, Any] = {}
    status: Optional[str] = None
    #: the audio file scored (absent in 0.1 parts): another input folder's file of the same
    #: recording id is another recording
    source_path: Optional[str] = None


class ScoresMeta(TableMeta):
    """The assembled scores table (`hilbert score --out`, `hilbert merge`)."""

    stage: str = "scores"
    model_id: Optional[str] = None
    config_hash: Optional[str] = None
    #: [K, N] of the run that wrote it (null after `hilbert merge`)
    shard: Optional[list[int]] = None
    n_recordings: Optional[int] = None
    options: dict[str, Any] = {}
    #: `hilbert merge`: the shard files' names
    merged_from: Optional[list[str]] = None
