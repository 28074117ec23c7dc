"""The streaming score pass: one recording at a time, every stage cached, crash-safe output.

Layout of the work directory (shared by every shard of a run, and with `hilbert prepare` /
`hilbert embed` outputs made with the same options, which are reused, never recomputed):

    WORK/prepare/...                      words + turns per recording (hilbert prepare)
    WORK/embed/...                        segments + features per recording (hilbert embed)
    WORK/score/<model_key>/<recording_id>.parquet   one score part per recording
    WORK/errors/score/<recording_id>.parquet        error rows of failed recordings

The run's manifest (one row per file discovered, docs/CONTRACTS.md "Manifest") sits next to the
scores table, where no glob of the scores picks it up: `--out scores.parquet` ->
scores.manifest/part-K-of-N.parquet; `--out DIR/` -> DIR/_manifest/part-K-of-N.parquet. With
explain, the evidence table (evidence.py) is placed the same way (scores.evidence/, DIR/_evidence/),
from per-recording parts under WORK/evidence/<model_key>/.

A score part is written atomically (temp file + rename) and carries a config hash (model,
prepare and embed options, --embeddings); a recording whose part exists with that hash and
status ok is skipped as done. The final table is then streamed from the parts of the
selected recordings (in recording_id order) into a temp file that is renamed into place, so
a run killed at any moment and started again ends with exactly the rows of an uninterrupted
run: no duplicates, no partial files. Failed recordings are retried on the next run and give
one error row each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__, manifest
from ..batch import BatchResult, Recording, Shard, Skipped, add_seconds, discover, select_shard
from ..contracts.scores import ScoresMeta, rows_to_table
from .paths import beside_table, manifest_dir, part_is_done, part_matches, part_path, shard_output_path  # noqa: F401
from .worker import (NoSpeech, NonFiniteScores, ScoreOptions, ScorePrepare, ScoreWorker,  # noqa: F401
                     check_finite, load_bundle, model_key, score_config, scored_facts, task_classes)

if TYPE_CHECKING:
    from ..engines.base import Engine

# ----------------------------------------------------------------------------- assembly


def assemble(recordings: Iterable[Recording], worker: ScoreWorker, out_path: Path, extra_meta: dict) -> int:
    """Stream the parts of `recordings` into `out_path` (temp file + rename). Returns row count.

    The temp is this run's own (atomic_write); a temp of another run on the same --out is left
    alone unless it is stale (its writer is gone), so concurrent runs never break each other.
    """
    from ..parquet_io import atomic_write, clean_stale_temps, with_metadata

    schema = worker.schema
    out_path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_path.parent, recursive=False)  # left by a run killed while assembling
    meta_schema = with_metadata(schema.empty_table(), ScoresMeta.current(**extra_meta).to_metadata()).schema
    n = 0

    def write(tmp: str) -> None:
        nonlocal n
        with pq.ParquetWriter(tmp, meta_schema, compression="zstd") as writer:
            for rec in sorted(recordings):
                table = _part_or_not_scored(rec, worker)
                writer.write_table(table.replace_schema_metadata(meta_schema.metadata))
                n += table.num_rows

    atomic_write(out_path, write)
    return n


def _part_or_not_scored(rec: Recording, worker: ScoreWorker) -> pa.Table:
    """The recording's score part, or one NotScored error row when it has none (or it is unreadable)."""
    schema = worker.schema
    path = part_path(worker.options.work_dir, worker.key, rec.recording_id)
    if part_matches(path, worker.config_hash, rec.path) is not None:  # never another folder's file of this id
        try:
            return pq.read_table(path).select(schema.names).cast(schema)
        except (OSError, pa.ArrowInvalid, KeyError):
            pass
    return rows_to_table([{
        "recording_id": rec.recording_id, "status": "error", "error_stage": "score",
        "error_type": "NotScored", "tool_version": __version__,
        "model_id": str(worker.bundle.model_id),
        "error_message": "no score output for this recording (run the same command again)",
    }], schema)


# ----------------------------------------------------------------------------- the run


@dataclass
class ScoreRun:
    result: BatchResult
    out_path: Path
    n_rows: int
    n_recordings: int
    n_ignored: int  # non-audio / hidden files found in the input
    timings: dict[str, float] = field(default_factory=dict)
    #: with explain: the evidence table's part and its row count
    evidence_path: Path | None = None
    n_evidence_rows: int = 0

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def score_recordings(
    source: str | os.PathLike | Sequence[Recording],
    options: ScoreOptions,
    out: str | os.PathLike,
    *,
    shard: Shard | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    engine: "str | Engine" = "local",
    engine_options: Mapping[str, Any] | None = None,
    jobs: int = 1,
    ignored: Iterable[Skipped] = (),
) -> ScoreRun:
    """Score every recording of `source` (directory, file, list file, or Recordings) in `shard`.

    `engine`: "local" / "ray" (with `engine_options`) or an Engine; `jobs`: recordings at once
    on the local engine. Score is a chain of stages: the ScoreWorker (prepare -> embed -> model),
    preceded by ScorePrepare where the engine runs a chain's stages on separate workers (Ray).
    `ignored`: with Recordings, the files discovery passed over (their manifest rows).
    """
    from ..engines.runner import get_engine

    shard = shard or Shard()
    if isinstance(source, (list, tuple)):
        recordings, skipped = list(source), list(ignored)
    else:
        recordings, skipped = discover(source)
    recordings = select_shard(recordings, shard)
    eng = get_engine(engine, engine_options, jobs=jobs)
    worker = ScoreWorker(options)
    _ = worker.config_hash, worker.schema  # fail fast (one line) on a bad model dir before any work
    stages = [ScorePrepare(worker), worker] if eng.pipelined else [worker]
    results = eng.run(recordings, stages, overwrite=overwrite, show_progress=show_progress)
    result, timings = results[-1], {}
    for res in results:  # seconds per step, summed over the recordings and the workers that ran them
        add_seconds(timings, res.timings)
    out_path = shard_output_path(out, shard)
    n_rows = assemble(recordings, worker, out_path, {
        "model_id": worker.bundle.model_id, "config_hash": worker.config_hash, "shard": [shard.index, shard.count],
        "n_recordings": len(recordings), "options": {
            "model_dir": str(options.model_dir), "embeddings": options.embeddings,
        },
    })
    evidence_path, n_evidence = None, 0
    if options.explain:
        from .evidence import assemble_evidence

        evidence_path, n_evidence = assemble_evidence(recordings, worker, out_path, top_k=options.explain_top,
                                                      shard=shard, extra_meta={"model_id": worker.bundle.model_id})
    manifest.finish(result, manifest_dir(out_path), shard=shard, ignored=skipped,
                    extra_meta={"model_id": worker.bundle.model_id, "scores": out_path.name})
    return ScoreRun(result, out_path, n_rows, len(recordings), len(skipped), timings, evidence_path, n_evidence)
