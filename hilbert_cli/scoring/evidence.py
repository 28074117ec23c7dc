"""The evidence table of `hilbert score --explain` (docs/CONTRACTS.md, "Evidence table").

For each scored recording and task: the segments the model's attention pooling weighted most,
per view (audio, text, joint), and for a model with a segment vote the segments that gave the
predicted class most of its vote (view vote), with their times, speaker and text, so a reader
can jump to the moments behind a score. The weights are the pooling softmax over the positions the model saw
(TaskPrediction.attention); a position is mapped back to its segment_index through
TaskPrediction.positions, so a recording subsampled to max_segments names its true segments.
The joint pool runs over 2L positions (L audio-query positions, then L text-query positions,
one pair per segment): a segment's joint weight is the sum of its two positions' weights.

Like the scores table, the evidence is written per recording under the work directory
(WORK/evidence/<model_key>/<recording_id>.parquet, every rank, atomically, before the score part)
and assembled at the end of the run from the parts of the selected recordings, keeping the
top K ranks per view: a resumed or sharded run ends with the rows of an uninterrupted one.
Where it goes, beside the scores table and out of any glob of the scores (as the manifest):
`--out scores.parquet` -> scores.evidence/part-K-of-N.parquet; `--out DIR/` ->
DIR/_evidence/part-K-of-N.parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..batch import Recording, Shard, is_complete, options_hash, output_path
from ..errors import InputError
from ..parquet_io import read_metadata, read_table

if TYPE_CHECKING:
    from .worker import ScoreWorker

#: bump when the rows of an evidence part change (old parts are then recomputed)
EVIDENCE_VERSION = 1
DEFAULT_TOP = 5
VIEWS = (("audio", "attn_a"), ("text", "attn_t"), ("joint", "attn_j"), ("vote", "vote"))

EVIDENCE_SCHEMA = pa.schema([
    ("recording_id", pa.string()),
    ("task", pa.string()),
    ("view", pa.string()),          # audio | text | joint | vote (null on a note row)
    ("rank", pa.int32()),           # 1 = the highest weight of the view
    ("segment_index", pa.int32()),  # the segments table's row
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("speaker", pa.string()),
    ("text", pa.string()),
    ("weight", pa.float64()),       # pooling weight or vote share; a view's weights over all segments sum to 1
    ("note", pa.string()),          # why a task has no weights (transfer variants); null otherwise
])

SEGMENT_COLUMNS = ("segment_index", "start_s", "end_s", "speaker", "text")


def no_attention_note(variant: str) -> str:
    return (f"model variant '{variant}' mean-pools the segments: it has no attention weights, "
            "so no segment is singled out")


def segment_weights(pred) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """view -> (segment_index, weight) over the positions the model saw ({} without attention).

    The joint weights [2L] fold onto segments as audio-query half + text-query half."""
    pos = np.asarray(pred.positions, np.int64)
    out = {}
    for view, key in VIEWS:
        w = pred.attention.get(key)
        if w is None or len(pos) == 0:
            continue
        w = np.asarray(w, np.float64).ravel()
        if view == "joint" or (view == "vote" and len(w) == 2 * len(pos)):  # a vote over the joint sequence
            if len(w) != 2 * len(pos):
                raise ValueError(f"task {pred.task}: {len(w)} joint weights for {len(pos)} positions")
            w = w[:len(pos)] + w[len(pos):]
        elif len(w) != len(pos):
            raise ValueError(f"task {pred.task}: {len(w)} {view} weights for {len(pos)} positions")
        out[view] = (pos, w)
    return out


def ranked(weights: np.ndarray) -> np.ndarray:
    """Order of positions by weight, highest first; ties by segment order (deterministic)."""
    return np.lexsort((np.arange(len(weights)), -weights))


def evidence_rows(recording_id: str, preds, segments: pa.Table, variants: dict[str, str]) -> list[dict]:
    """Every segment's rank and weight per task and view (the part under the work dir)."""
    seg = {c: segments.column(c).to_pylist() for c in SEGMENT_COLUMNS}
    rows = []
    for p in preds:
        views = segment_weights(p)
        if not views:
            rows.append({"recording_id": recording_id, "task": p.task,
                         "note": no_attention_note(variants.get(p.task, "transfer"))})
            continue
        for view, (idx, w) in views.items():
            for rank, i in enumerate(ranked(w), start=1):
                s = int(idx[i])
                rows.append({"recording_id": recording_id, "task": p.task, "view": view, "rank": rank,
                             "segment_index": s, "start_s": seg["start_s"][s], "end_s": seg["end_s"][s],
                             "speaker": seg["speaker"][s], "text": seg["text"][s], "weight": float(w[i])})
    return rows


def rows_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVIDENCE_SCHEMA)


# ----------------------------------------------------------------------------- the segments


def recording_segments(features_path: Path, work_dir: Path, recording_id: str, n_segments: int) -> pa.Table:
    """The segments table the features file was made from (its metadata names it), checked to
    hold exactly the n segments the model was given, in segment_index order."""
    from ..embed import cache

    meta = read_metadata(features_path)
    key, source = meta.get("segment_key"), meta.get("segments_source_hash")
    if not key or not source:
        raise InputError(f"{features_path}: the features file names no segments table (segment_key); "
                         "run `hilbert embed` again")
    path = cache.segments_path(work_dir, key, recording_id)
    table = cache.load_segments(path, source)
    if table is None:
        raise InputError(f"{path}: missing, unreadable or made from other words than the features; "
                         "run the same command again with --overwrite")
    table = table.sort_by([("segment_index", "ascending")])
    index = table.column("segment_index").to_pylist()
    if index != list(range(n_segments)):
        raise InputError(f"{path}: {table.num_rows} segments, the features {n_segments}: the two files disagree; "
                         "run the same command again with --overwrite")
    return table


# ----------------------------------------------------------------------------- parts and assembly


def evidence_hash(score_config_hash: str) -> str:
    """An evidence part belongs to one score config (model, stages) and one evidence version."""
    return options_hash({"score": score_config_hash, "evidence": EVIDENCE_VERSION})


def part_path(work_dir: Path, key: str, recording_id: str) -> Path:
    return output_path(Path(work_dir), f"evidence/{key}", recording_id)


def part_is_done(work_dir: Path, key: str, score_config_hash: str, recording_id: str) -> bool:
    return is_complete(part_path(work_dir, key, recording_id), evidence_hash(score_config_hash))


def evidence_dir(out_path: Path) -> Path:
    """Where a run's evidence parts go, beside its scores table (as the manifest: see the module docstring)."""
    from .paths import beside_table

    return beside_table(out_path, "evidence")


def top_rows(table: pa.Table, top_k: int) -> pa.Table:
    """The top_k ranks of every view, and the note rows."""
    rank = table.column("rank")
    return table.filter(pc.or_kleene(pc.is_null(rank), pc.less_equal(rank, top_k)))


def _recording_evidence(rec: Recording, worker: "ScoreWorker", top_k: int) -> pa.Table | None:
    """The recording's top rows, when it was scored (status ok) with this config; else None."""
    from .paths import part_is_done as score_done
    from .paths import part_path as score_part

    wd = worker.options.work_dir
    if not score_done(score_part(wd, worker.key, rec.recording_id), worker.config_hash):
        return None
    if not part_is_done(wd, worker.key, worker.config_hash, rec.recording_id):
        return None
    try:
        table = read_table(part_path(wd, worker.key, rec.recording_id))
        return top_rows(table.select(EVIDENCE_SCHEMA.names).cast(EVIDENCE_SCHEMA), top_k)
    except (InputError, KeyError, pa.ArrowInvalid):
        return None


def assemble_evidence(recordings: Iterable[Recording], worker: "ScoreWorker", out_path: Path, *,
                      top_k: int, shard: Shard, extra_meta: dict) -> tuple[Path, int]:
    """Stream the evidence parts of `recordings` into evidence_dir(out_path)/part-K-of-N.parquet
    (temp file + rename); parts of another shard count are removed (a glob read would count a
    recording twice). Returns (path, rows)."""
    from ..manifest import part_name
    from ..parquet_io import atomic_write, clean_stale_temps, with_metadata

    d = evidence_dir(out_path)
    d.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(d, recursive=False)
    path = d / part_name(shard)
    meta = {"stage": "evidence", "top_k": top_k, "scores": out_path.name, "shard": [shard.index, shard.count],
            **extra_meta}
    schema = with_metadata(EVIDENCE_SCHEMA.empty_table(), meta).schema
    n = 0

    def write(tmp: str) -> None:
        nonlocal n
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for rec in sorted(recordings):
                table = _recording_evidence(rec, worker, top_k)
                if table is not None and table.num_rows:
                    writer.write_table(table.replace_schema_metadata(schema.metadata))
                    n += table.num_rows

    atomic_write(path, write)
    for old in d.glob("part-*-of-*.parquet"):
        if not old.name.endswith(f"-of-{shard.count}.parquet"):
            old.unlink(missing_ok=True)
    return path, n
