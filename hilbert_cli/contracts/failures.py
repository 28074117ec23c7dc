"""The errors table: one row per failed recording and stage (docs/CONTRACTS.md, "Errors table")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa

from ..parquet_io import read_table
from .base import TableMeta

ERRORS_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("stage", pa.string()),
        ("error_type", pa.string()),
        ("message", pa.string()),
        ("path", pa.string()),
        ("time_utc", pa.string()),
    ]
)


class ErrorsMeta(TableMeta):
    """stage = "errors/<stage>"."""

    stage: str = "errors"


def write_error_row(path: str | os.PathLike, row: Mapping[str, str], stage: str) -> Path:
    """Write one error row (ERRORS_SCHEMA's columns) to `path`, atomically."""
    return ErrorsMeta.current(stage=f"errors/{stage}").write_table(pa.Table.from_pylist([dict(row)], ERRORS_SCHEMA),
                                                                   path)


def read_error_rows(files: Iterable[str | os.PathLike]) -> pa.Table:
    """Error files as one table with exactly ERRORS_SCHEMA (no file: no rows)."""
    tables = [read_table(f).select(ERRORS_SCHEMA.names).cast(ERRORS_SCHEMA) for f in files]
    return pa.concat_tables(tables) if tables else ERRORS_SCHEMA.empty_table()
