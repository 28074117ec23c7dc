"""The per-stage manifest: one row per recording a run discovered, saying what happened to it.

Every batch stage (prepare, embed, score) ends by writing WORK/manifest/<stage>/part-K-of-N.parquet
(part-0-of-1 unsharded), rebuilt atomically from the run's BatchResult and the outputs on disk,
so a resumed run's manifest still covers the recordings done earlier. The run's summary line and
exit code are computed from the same rows. A glob read of WORK/manifest/<stage>/ (or
`read_manifest`) is the whole picture over shards. See docs/CONTRACTS.md, "Manifest".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ExitCode, InputError
from .contracts.base import OutputMeta, TableMeta
from .contracts.manifest import MANIFEST_SCHEMA, ManifestMeta, read_manifest_parts, write_manifest_part  # noqa: F401
from .contracts.prepare import PrepareMeta

if TYPE_CHECKING:  # batch imports this module
    from .batch import BatchResult
    from .recordings import Recording, Shard, Skipped

OK, NO_SPEECH, ERROR, IGNORED = "ok", "no_speech", "error", "ignored"
STATUSES = (OK, NO_SPEECH, ERROR, IGNORED)
MANIFEST_DIR = "manifest"

#: what a stage knows about one recording's output: duration_s, n_words, n_speakers,
#: n_segments (None where the stage does not know), no_speech (True: nothing was said), and
#: config_hash when it differs per recording (embed's includes the recording's prepare hash)
Facts = Mapping[str, Any]
Describe = Callable[["Recording"], "Facts | None"]
FACT_KEYS = ("duration_s", "n_words", "n_speakers", "n_segments")


def failure_status(exc: BaseException) -> str:
    """A failed recording's status: `no_speech` for an exception that says so (`hilbert_status`,
    e.g. score's NoSpeech: nothing to score), else `error`."""
    return NO_SPEECH if getattr(exc, "hilbert_status", None) == NO_SPEECH else ERROR


def footer(path: Path, model: type[TableMeta] = OutputMeta) -> tuple[int, Any] | None:
    """(row count, hilbert metadata as `model`) of a Parquet file from its footer alone; None if unreadable."""
    try:
        return pq.ParquetFile(path).metadata.num_rows, model.read(path)
    except (OSError, pa.ArrowInvalid, InputError):
        return None


def words_facts(path: Path, config_hash: str | None = None) -> dict:
    """Facts of a prepare words table (duration, words, speakers); {} when it is missing,
    unreadable or written with another config hash than `config_hash` (when given)."""
    if not Path(path).is_file():
        return {}
    f = footer(path, PrepareMeta)
    if f is None or (config_hash is not None and f[1].config_hash != config_hash):
        return {}
    n, meta = f
    return {"duration_s": meta.duration_s, "n_words": n, "n_speakers": len(meta.speakers), "no_speech": n == 0}


def _num(value: Any, kind: type) -> Any:
    try:
        return None if value is None else kind(value)
    except (TypeError, ValueError):
        return None


def recording_row(rec: "Recording", stage: str, status: str, *, skipped: bool = False, facts: Facts | None = None,
                  config_hash: str | None = None, seconds: float = 0.0, error: Mapping | None = None) -> dict:
    from .recordings import as_text, name_text

    facts = facts or {}
    return {
        "recording_id": as_text(rec.recording_id), "path": name_text(str(rec.path)), "stage": stage,
        "status": status, "skipped": skipped,
        "duration_s": _num(facts.get("duration_s"), float),
        **{k: _num(facts.get(k), int) for k in FACT_KEYS[1:]},
        "config_hash": facts.get("config_hash") or config_hash, "seconds": round(float(seconds or 0.0), 4),
        "error_type": (error or {}).get("error_type"), "message": (error or {}).get("message"),
    }


def batch_rows(result: "BatchResult", recordings: Sequence["Recording"], *, describe: Describe | None = None,
               config_hash: str | None = None) -> list[dict]:
    """One row per recording of the batch, from what the engine recorded (done, skipped, failed,
    seconds) and, for facts, `describe(rec)` (the recording's output on disk): one path for a
    recording done now and one done by an earlier run, so both engines and a resume agree."""
    failed = {f["recording_id"]: f for f in result.failed}
    skipped, done = set(result.skipped), set(result.done)
    rows = []
    for rec in recordings:
        err = failed.get(rec.recording_id)
        if err is None and rec.recording_id not in done and rec.recording_id not in skipped:
            err = {"error_type": "NotProcessed", "message": "the engine reported nothing for this recording; run again"}
        facts = _describe(describe, rec)
        if err is not None:
            status = err.get("status") or ERROR
            if status == ERROR:  # an older output's counts would mislead; its length and hash do not
                facts = {k: facts.get(k) for k in ("duration_s", "config_hash")}
        else:
            status = NO_SPEECH if facts.get("no_speech") else OK
        rows.append(recording_row(rec, result.stage, status, skipped=rec.recording_id in skipped and err is None,
                                  facts=facts, config_hash=config_hash,
                                  seconds=result.seconds.get(rec.recording_id, 0.0), error=err))
    return rows


def _describe(describe: Describe | None, rec: "Recording") -> dict:
    if describe is None:
        return {}
    try:
        return dict(describe(rec) or {})
    except Exception:  # a fact we cannot read is a null, never a stopped run
        return {}


def ignored_rows(ignored: Iterable["Skipped"], stage: str, shard: "Shard | None" = None) -> list[dict]:
    """Rows for the files discovery passed over (hidden, not an audio extension), in this shard."""
    from .recordings import Recording, name_text

    rows = []
    for s in ignored:
        rid = s.recording_id or name_text(Path(s.path).name)
        if shard is None or shard.contains(rid):
            rows.append(recording_row(Recording(rid, Path(s.path)), stage, IGNORED,
                                      error={"error_type": None, "message": s.reason}))
    return rows


def manifest_dir(out_root: Path, stage: str) -> Path:
    """WORK/manifest/<stage>: where prepare and embed write their manifest parts."""
    return Path(out_root) / MANIFEST_DIR / stage


def part_name(shard: "Shard | None") -> str:
    k, n = (shard.index, shard.count) if shard is not None else (0, 1)
    return f"part-{k}-of-{n}.parquet"


def finish(result: "BatchResult", directory: Path, *, shard: "Shard | None" = None,
           ignored: Iterable["Skipped"] = (), extra_meta: Mapping[str, Any] | None = None) -> "BatchResult":
    """Add the ignored files' rows to `result.rows` and write them as this shard's manifest part,
    `directory`/part-K-of-N.parquet (manifest_dir(WORK, stage) for prepare and embed).

    Written last and atomically, so a killed run leaves the previous manifest intact. Parts of
    another shard count (an earlier layout of this work dir) are removed: they would count a
    recording twice in a glob read.
    """
    k, n = (shard.index, shard.count) if shard is not None else (0, 1)
    rows = sorted(result.rows + ignored_rows(ignored, result.stage, shard), key=lambda r: r["recording_id"])
    for r in rows:
        r["shard"] = f"{k}/{n}"
    result.rows = rows
    d = Path(directory)
    path = d / part_name(shard)
    write_manifest_part(path, rows, ManifestMeta.current(
        **{"stage": f"manifest/{result.stage}", "shard": [k, n],
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **dict(extra_meta or {})}))
    for old in d.glob("part-*-of-*.parquet"):
        if not old.name.endswith(f"-of-{n}.parquet"):
            old.unlink(missing_ok=True)
    result.manifest_path = path
    return result


def read_manifest(source: str | os.PathLike) -> pa.Table:
    """A manifest part, or a stage's manifest directory (every shard's part), as one table in
    recording_id order; a recording in two parts (overlapping shards) is an InputError."""
    p = Path(source)
    files = sorted(f for f in p.glob("part-*-of-*.parquet")) if p.is_dir() else [p]
    if not files:
        raise InputError(f"{p}: no manifest parts (part-K-of-N.parquet) here")
    table = read_manifest_parts(files)
    ids = table.column("recording_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[0]
        raise InputError(f"{p}: recording '{dup}' is in more than one manifest part (overlapping shards)")
    return table.sort_by([("recording_id", "ascending")])


# ----------------------------------------------------------------------------- the summary


def counts(rows: Iterable[Mapping]) -> dict[str, int]:
    """Rows per outcome: ok / no_speech / error / ignored (this run's), skipped, failed."""
    c = dict.fromkeys((*STATUSES, "skipped", "failed", "done"), 0)
    for r in rows:
        if r["status"] != IGNORED and r.get("skipped"):
            c["skipped"] += 1
        else:
            c[r["status"]] += 1
            c["done"] += r["status"] in (OK, NO_SPEECH) and not r.get("error_type")
        c["failed"] += bool(r.get("error_type"))
    return c


def exit_code(rows: Iterable[Mapping]) -> int:
    """PARTIAL when any row is a failure (it carries an error_type), else OK."""
    return ExitCode.PARTIAL if counts(rows)["failed"] else ExitCode.OK
