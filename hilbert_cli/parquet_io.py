"""Parquet in and out: atomic writes and the key-value metadata every stage file carries.

Metadata lives under one key, ``hilbert``, as a JSON object: tool version, stage, model ids
and revisions, and the options used. Writes go to a temp file in the same directory and are
renamed into place, so a killed process never leaves a partial file behind; temps left by a
killed process carry its host and pid, so a later run can tell stale ones from live ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import DiskFull, InputError, disk_full_cause, disk_full_message

METADATA_KEY = b"hilbert"


def with_metadata(table: pa.Table, metadata: Mapping[str, Any]) -> pa.Table:
    """Return `table` whose schema carries `metadata` (plus the tool version) as JSON."""
    meta = {"tool": "hilbert", "tool_version": __version__, **metadata}
    existing = dict(table.schema.metadata or {})
    existing[METADATA_KEY] = json.dumps(meta, sort_keys=True, default=str).encode()
    return table.replace_schema_metadata(existing)


def write_table_atomic(table: pa.Table, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `table` to `path` via temp file + rename (atomic on POSIX file systems)."""
    if metadata is not None:
        table = with_metadata(table, metadata)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Run `write(tmp)` on a fresh temp file next to `path`, then rename it into place.

    The one writer every output goes through: a killed process never leaves a partial file
    (only a temp named after its host and pid, which `clean_stale_temps` removes later); the
    file gets the umask's permissions like any other output, not mkstemp's 0600; a full disk
    becomes one DiskFull line naming the file and how much of it was written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        written = _size(tmp)
        Path(tmp).unlink(missing_ok=True)
        cause = disk_full_cause(exc)
        if cause is not None and not isinstance(exc, DiskFull):
            raise DiskFull(disk_full_message(cause, path, written)) from exc
        raise
    return path


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def current_umask() -> int:
    """The process umask, read without changing it (outputs get 0o666 & ~umask like any file)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- temp files

TEMP_SUFFIX = ".tmp"
#: when this process started (imported at CLI start): temps newer than this are never stale
PROCESS_STARTED = time.time()
#: a temp file not touched for this long before a run started is stale even when its writer
#: cannot be checked (another host sharing the work dir, or an older hilbert)
FOREIGN_STALE_S = 3600.0
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]
_TEMP = re.compile(r"^\..*\.(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)\.[^.]+\.tmp$", re.DOTALL)


def temp_prefix(name: str) -> str:
    """`.NAME.HOST-PID.`: the temp's writer is in its name (NAME cut short so the temp fits)."""
    short = name.encode("utf-8", "surrogateescape")[:100].decode("utf-8", "ignore")
    return f".{short}.{_HOST}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def is_stale_temp(path: Path, started: float = PROCESS_STARTED) -> bool:
    """A temp file no live writer will rename: older than this run, and its writer (this host,
    that pid) is gone; a temp of another host or an older hilbert only after FOREIGN_STALE_S idle."""
    try:
        mtime = path.lstat().st_mtime
    except OSError:
        return False
    if mtime >= started:
        return False
    m = _TEMP.match(path.name)
    if m and m["host"] == _HOST:
        return int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"]))
    return mtime < started - FOREIGN_STALE_S


def clean_stale_temps(root: str | os.PathLike, started: float = PROCESS_STARTED, *, recursive: bool = True) -> int:
    """Remove the stale temp files (see is_stale_temp) under `root`; returns how many.

    Only files named like our temps (`.NAME...tmp`) are looked at, and never one a live
    process may still rename, so two runs sharing a directory cannot delete each other's.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    walk = os.walk(root) if recursive else [(str(root), [], os.listdir(root))]
    n = 0
    for d, _, names in walk:
        for name in names:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                p = Path(d) / name
                if p.is_file() and not p.is_symlink() and is_stale_temp(p, started):
                    p.unlink(missing_ok=True)
                    n += 1
    return n


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
