"""Parquet in and out: atomic writes and the key-value metadata every stage file carries.

Metadata lives under one key, ``hilbert``, as a JSON object: tool version, stage, model ids
and revisions, and the options used. Writes go to a temp file in the same directory and are
renamed into place, so a killed process never leaves a partial file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import InputError

METADATA_KEY = b"hilbert"


def with_metadata(table: pa.Table, metadata: Mapping[str, Any]) -> pa.Table:
    """Return `table` whose schema carries `metadata` (plus the tool version) as JSON."""
    meta = {"tool": "hilbert", "tool_version": __version__, **metadata}
    existing = dict(table.schema.metadata or {})
    existing[METADATA_KEY] = json.dumps(meta, sort_keys=True, default=str).encode()
    return table.replace_schema_metadata(existing)


def write_table_atomic(table: pa.Table, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `table` to `path` via temp file + rename (atomic on POSIX file systems)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata is not None:
        table = with_metadata(table, metadata)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``hilbert`` metadata of a Parquet file ({} when absent)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file or directory dataset, with a one-line error naming the path."""
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise InputError(f"{path}: cannot read Parquet ({' '.join(str(exc).split())})") from exc
