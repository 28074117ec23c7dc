"""The per-stage manifest table: one row per file a run found (docs/CONTRACTS.md, "Manifest")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa

from ..parquet_io import read_table
from .base import TableMeta

MANIFEST_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("path", pa.string()),
        ("stage", pa.string()),
        ("status", pa.string()),
        ("skipped", pa.bool_()),  # already done with the same options: not redone by this run
        ("duration_s", pa.float64()),
        ("n_words", pa.int64()),
        ("n_speakers", pa.int64()),
        ("n_segments", pa.int64()),
        ("config_hash", pa.string()),
        ("seconds", pa.float64()),  # wall seconds this run spent on the recording (0 when skipped)
        ("error_type", pa.string()),
        ("message", pa.string()),  # the error message, or why a file was ignored
        ("shard", pa.string()),
    ]
)


class ManifestMeta(TableMeta):
    """stage = "manifest/<stage>"; score adds model_id and scores (the table's file name)."""

    stage: str = "manifest"
    shard: list[int] = [0, 1]
    time_utc: Optional[str] = None
    model_id: Optional[str] = None
    scores: Optional[str] = None


def write_manifest_part(path: str | os.PathLike, rows: list[dict], meta: ManifestMeta) -> Path:
    return meta.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), path)


def read_manifest_parts(files: Iterable[str | os.PathLike]) -> pa.Table:
    return pa.concat_tables([read_table(f).select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA) for f in files])
