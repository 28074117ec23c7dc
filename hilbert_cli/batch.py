"""Batch mechanics shared by every per-recording command (prepare, embed, score).

- discovery: a directory (recursive), one file, or a list file -> Recording(recording_id, path),
  recording_id = path relative to the input root (POSIX form), stable across machines, as text
  for any name the file system allows (bytes that are not UTF-8 are percent-encoded: see
  docs/CONTRACTS.md, "Recording ids and work-file names");
- sharding: `--shard K/N` keeps recordings whose stable hash falls in shard K (0-based), so
  job arrays fan out with no coordinator and the shards partition the input exactly;
- work files: output_path() is the one place a recording's work-file name is made; it mirrors
  the input tree but bounds every name, whatever the recording's name;
- resume: a recording is done when its output exists with the same config hash;
- isolation: one bad recording becomes one error row (errors/<stage>/<recording_id>.parquet),
  never a stopped batch; the errors directory is itself a Parquet dataset. A full disk is not
  a bad recording: it stops the batch with one line (DiskFull), keeping what was written;
- accounting: every run's BatchResult holds one manifest row per recording (hilbert_cli.manifest),
  and its summary and exit code are computed from those rows.

Running a stage over recordings is the engines' job (hilbert_cli.engines: `get_engine`,
`run_batch`); this module has no engine in it, so the engines import it and never the reverse.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa

from . import manifest
from .recordings import Recording, Shard, Skipped, as_text, name_bytes, name_text  # noqa: F401  (re-exported)
from .console import console
from .errors import DiskFull, InputError, disk_full_cause, disk_full_message, one_line
from .contracts.failures import read_error_rows, write_error_row
from .contracts.base import OutputMeta

AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .m4a .aac .ogg .oga .opus .webm .mp4 .m4b .mka .mkv .mov .wma "
    ".aif .aiff .aifc .amr .3gp .caf .au .snd .ac3".split()
)
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list", ".tsv"})

def _recording_id(path: Path, root: Path) -> str:
    """The path as the user laid it out, relative to the root: links are not followed, so
    a symlinked recording keeps its own name (and a dangling link still gets an error row)."""
    p, r = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        rel = p.relative_to(r)
    except ValueError:
        rel = Path(*p.parts[1:])  # outside the root: the absolute path, minus "/"
    return name_text(rel.as_posix())


def discover(source: str | Path) -> tuple[list[Recording], list[Skipped]]:
    """Recordings under `source` (a directory, an audio file, or a list file of paths).

    Hidden files and files without an audio extension are returned as Skipped (reported,
    never crashed on). Files with an audio extension are always Recordings, even when they
    turn out to be unreadable: that is an error row later, not a silent skip.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such file or directory")
    recordings: list[Recording] = []
    skipped: list[Skipped] = []
    if source.is_dir():
        root = source
        for p in sorted(source.rglob("*")):
            if p.is_dir():
                continue
            rel_parts = p.relative_to(source).parts
            if any(part.startswith(".") for part in rel_parts):
                skipped.append(Skipped(p, "hidden file", _recording_id(p, root)))
            elif p.suffix.lower() not in AUDIO_EXTENSIONS:
                skipped.append(Skipped(p, f"not an audio file extension ({p.suffix or 'none'})", _recording_id(p, root)))
            else:
                recordings.append(Recording(_recording_id(p, root), p))
    elif source.suffix.lower() in LIST_EXTENSIONS:
        root = source.parent
        text = source.read_bytes().decode("utf-8", "surrogateescape")  # names as the file system has them
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("\t")[0].strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line).expanduser()
            p = p if p.is_absolute() else root / p
            recordings.append(Recording(_recording_id(p, root), p))
    else:
        recordings.append(Recording(name_text(source.name), source))
    if not recordings:
        ignored = f" ({len(skipped)} file(s) ignored: hidden or not an audio extension)" if skipped else ""
        raise InputError(f"no recordings found under {source}{ignored}")
    ids = [r.recording_id for r in recordings]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[0]
        raise InputError(f"{source}: recording '{dup}' is listed more than once")
    return recordings, skipped


def discover_outputs(root: Path, suffix: str = ".parquet") -> list[Recording]:
    """Recordings with a per-recording work file under `root` (as output_path names them), each
    with the recording_id its file records (file names are bounded, so they may not spell it)."""
    found: dict[str, Recording] = {}
    for p in sorted(Path(root).rglob(f"*{suffix}")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # temps and the like
        try:
            rid = str(OutputMeta.read(p).recording_id or "")
        except InputError:
            rid = ""
        rid = as_text(rid or rel.as_posix()[: -len(suffix)])  # unreadable: an error row later, by its path
        if rid not in found or p == Path(root) / work_name(rid, suffix):  # a canonical name wins
            found[rid] = Recording(rid, p)
    return sorted(found.values())


def select_shard(recordings: Iterable[Recording], shard: Shard) -> list[Recording]:
    return [r for r in recordings if shard.contains(r.recording_id)]


def options_hash(options: Mapping[str, Any]) -> str:
    """A short stable hash of the options that change a stage's output."""
    blob = json.dumps(options, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: a work-file name component longer than this (UTF-8 bytes) is cut and given a hash
MAX_NAME_BYTES = 120
_HASH_CHARS = 8


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]


def _cut(text: str, max_bytes: int) -> str:
    return text.encode("utf-8", "surrogateescape")[:max_bytes].decode("utf-8", "ignore")


def _component(part: str, suffix: str, full: str) -> str:
    """One path component of a work file: `part + suffix` when it is short and plain, else a cut
    stem + '-' + a hash of `full` (so two long names sharing a prefix never collide)."""
    part = as_text(part)
    if part not in ("", ".", "..") and not part.startswith(".") \
            and len((part + suffix).encode("utf-8")) <= MAX_NAME_BYTES:
        return part + suffix
    stem = _cut(part.lstrip("."), MAX_NAME_BYTES - _HASH_CHARS - 2 - len(suffix.encode("utf-8")))
    return f"{stem or '_'}-{_short_hash(full)}{suffix}"


def work_name(recording_id: str, suffix: str = ".parquet") -> str:
    """The relative work-file path of a recording: its id's directories and name, each bounded
    (MAX_NAME_BYTES) and never hidden, whatever the length or encoding of the recording's name."""
    *dirs, name = [p for p in str(recording_id).split("/") if p] or [""]
    return "/".join([*(_component(d, "", d) for d in dirs), _component(name, suffix, str(recording_id))])


def output_path(root: Path, subdir: str, recording_id: str, suffix: str = ".parquet") -> Path:
    """root/subdir/<recording_id><suffix>: mirrors the input tree, readable, one file per recording;
    the one function every per-recording work file is named by (see work_name)."""
    return Path(root) / subdir / work_name(recording_id, suffix)


#: bytes read from each end of an audio file for its fingerprint
FINGERPRINT_BYTES = 1 << 20


def source_fingerprint(path: str | os.PathLike) -> str:
    """`size:sha256` of an audio file's size and its first and last MiB: the same recording found
    under another path (an input folder moved or rsynced, another container mount point) is
    known without reading it whole. Recorded as `source_fingerprint` beside `source_path`."""
    import hashlib

    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return f"{size}:{h.hexdigest()[:32]}"


def same_source(recorded: str | os.PathLike | None, path: str | os.PathLike,
                fingerprint: str | None = None) -> bool:
    """Whether an output that records `recorded` as its audio file (`source_path`, and
    `fingerprint` where it records one) was made from `path`. Work files are keyed by recording
    id, which two input folders can share, so resume checks this too: the same path, or the same
    fingerprint (the file moved). An output that records no file (hilbert 0.1) is taken as it is."""
    if not recorded or Path(recorded).resolve() == Path(path).resolve():
        return True
    try:
        return bool(fingerprint) and source_fingerprint(path) == fingerprint
    except OSError:
        return False


def is_complete(path: Path, config_hash: str, source: str | os.PathLike | None = None) -> bool:
    """True when `path` exists and was written with `config_hash` (an unreadable file is not done)
    and, when `source` is given, from that audio file (same_source)."""
    if not path.is_file():
        return False
    try:
        meta = OutputMeta.read(path)
    except InputError:
        return False
    if meta.config_hash != config_hash:
        return False
    return source is None or same_source(meta.source_path, source, meta.source_fingerprint)


def error_path(out_root: Path, stage: str, recording_id: str) -> Path:
    return output_path(out_root, f"errors/{stage}", recording_id)


def write_error(out_root: Path, stage: str, rec: Recording, exc: BaseException) -> dict:
    """Write (and return) the error row of `rec`; every text in it is valid UTF-8, whatever the name."""
    row = {
        "recording_id": as_text(rec.recording_id),
        "stage": stage,
        "error_type": exc.__class__.__name__,
        "message": as_text(f"{rec.path}: {one_line(exc)}" if str(rec.path) not in str(exc) else one_line(exc)),
        "path": name_text(str(rec.path)),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_error_row(error_path(out_root, stage, rec.recording_id), row, stage)
    return row


def raise_if_disk_full(exc: BaseException, rec: Recording | None = None) -> None:
    """A full disk is no recording's fault: stop the batch with one DiskFull line instead."""
    if isinstance(exc, DiskFull):
        raise exc
    cause = disk_full_cause(exc)
    if cause is not None:
        during = f"while processing {as_text(rec.recording_id)}" if rec is not None else ""
        raise DiskFull(disk_full_message(cause, during=during)) from exc


def record_failure(out_root: Path, stage: str, rec: Recording, exc: BaseException) -> dict:
    """The error row of a failed recording, written when possible: a disk that is full now (or
    was the failure) stops the batch; any other failure to write the row is reported, not fatal."""
    raise_if_disk_full(exc, rec)
    status = {"status": manifest.failure_status(exc)}  # the manifest row's status (no_speech or error)
    try:
        return {**write_error(out_root, stage, rec, exc), **status}
    except Exception as write_exc:
        raise_if_disk_full(write_exc, rec)
        console.print(f"[red]could not write the error row of {as_text(rec.recording_id)}:[/] "
                      f"{as_text(one_line(write_exc))}", soft_wrap=True)
        return {"recording_id": as_text(rec.recording_id), "stage": stage, "error_type": exc.__class__.__name__,
                "message": as_text(one_line(exc)), "path": name_text(str(rec.path)), "time_utc": "", **status}


def clear_error(out_root: Path, stage: str, recording_id: str) -> None:
    error_path(out_root, stage, recording_id).unlink(missing_ok=True)


def read_errors(out_root: Path, stage: str | None = None) -> pa.Table:
    """All error rows under out_root/errors (or one stage's), as one table."""
    d = Path(out_root) / "errors"
    if stage:
        d = d / stage
    return read_error_rows(sorted(d.rglob("*.parquet")) if d.is_dir() else [])


def add_seconds(total: dict[str, float], more: Mapping[str, float]) -> dict[str, float]:
    """Add seconds per step (`more`) into `total`, step by step; returns `total`."""
    for step, seconds in more.items():
        total[step] = total.get(step, 0.0) + float(seconds)
    return total


@dataclass
class BatchResult:
    """What a run did: the engines fill done / skipped / failed / seconds; `rows` is the
    manifest built from them (engines.base.Engine.run), and the summary and exit code are read from it."""

    stage: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # recording_id -> wall seconds spent
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds, summed (stages that time steps)
    rows: list[dict] = field(default_factory=list)  # manifest rows (hilbert_cli.manifest)
    manifest_path: Path | None = None

    @property
    def exit_code(self) -> int:
        from .errors import ExitCode

        if self.rows:
            return manifest.exit_code(self.rows)
        return ExitCode.PARTIAL if self.failed else ExitCode.OK

    def counts(self) -> dict[str, int]:
        """Manifest rows per outcome (see manifest.counts)."""
        if self.rows:
            return manifest.counts(self.rows)
        return {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)}

    def summary(self) -> str:
        c = self.counts()
        rt = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
        detail = f" ({c['ok']} ok, {c['no_speech']} no speech)" if c.get("no_speech") else ""
        ignored = f", {c['ignored']} ignored (hidden or not audio)" if c.get("ignored") else ""
        where = f"; manifest {self.manifest_path}" if self.manifest_path else ""
        return (
            f"{self.stage}: {c['done']} done{detail}, {c['skipped']} skipped (already done), "
            f"{c['failed']} failed{ignored}; {self.audio_s / 3600:.2f} h audio in {self.wall_s:.1f} s{rt}{where}"
        )

