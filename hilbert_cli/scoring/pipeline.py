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

import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__, manifest
from ..batch import (
    BatchResult,
    Recording,
    Shard,
    discover,
    is_complete,
    options_hash,
    output_path,
    select_shard,
)
from ..embed.doc_stats import document_stats
from ..engines.runner import run_batch
from ..errors import ConfigError, HilbertError, InputError, one_line
from ..contracts.scores import (EMBEDDING_KEYS, ScorePartMeta, ScoresMeta, prob_column, rows_to_table,
                                scores_schema)
from ..parquet_io import write_table_atomic
from .evidence import DEFAULT_TOP

STAGE = "score"


class NoSpeech(HilbertError):
    """The recording has no (target-speaker) speech segments: nothing for the model to score."""

    hilbert_status = manifest.NO_SPEECH  # its manifest row says no_speech, not error


class NonFiniteScores(HilbertError):
    """The model gave a NaN or infinite value: the recording gets an error row, never status ok."""


def check_finite(preds, embeddings: bool) -> None:
    """Raise NonFiniteScores unless every probability (and written embedding) is finite."""
    for p in preds:
        values = {"probabilities": p.probs}
        if embeddings:
            values.update(p.embeddings or {})
        for name, v in values.items():
            if not np.isfinite(np.asarray(v, dtype=np.float64)).all():
                raise NonFiniteScores(f"task {p.task}: the model gave non-finite {name} (NaN or inf); "
                                      "its weights or this recording's features are broken")


@dataclass(frozen=True)
class ScoreOptions:
    """Everything that decides a score run. Picklable (Ray actors rebuild the worker from it)."""

    model_dir: Path
    work_dir: Path
    embeddings: bool = False
    device: str = "auto"
    #: existing transcripts (directory of .json/.srt/.vtt/.txt) used instead of ASR
    transcripts: Path | None = None
    #: also write the evidence table (the top `explain_top` segments per task and view by attention)
    explain: bool = False
    explain_top: int = DEFAULT_TOP

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_dir", Path(self.model_dir))
        object.__setattr__(self, "work_dir", Path(self.work_dir))
        if self.transcripts is not None:
            object.__setattr__(self, "transcripts", Path(self.transcripts))
        if isinstance(self.explain_top, bool) or not isinstance(self.explain_top, int) or self.explain_top < 1:
            raise ConfigError(f"--explain-top {self.explain_top!r}: expected a whole number >= 1")


# ----------------------------------------------------------------------------- the model


@functools.lru_cache(maxsize=4)
def _load_bundle(model_dir: str):
    from ..training import load_model_dir

    return load_model_dir(Path(model_dir))


def load_bundle(model_dir: str | os.PathLike):
    """The trained model (TrainedBundle); a missing, corrupt or incompatible dir -> ConfigError."""
    p = Path(model_dir).expanduser()
    if not p.exists():
        raise ConfigError(f"--model {p}: no such directory (expected a run directory from `hilbert train`)")
    try:
        return _load_bundle(str(p.resolve()))
    except HilbertError:
        raise
    except Exception as exc:  # anything the loader did not turn into a one-liner
        raise ConfigError(f"--model {p}: cannot load the trained model ({one_line(exc)})") from exc


def task_classes(bundle) -> dict[str, list[str]]:
    """Class names per task, in the model's order (each task's config.json `class_names`,
    validated at load)."""
    return {t: list(bundle.models[t].class_names) for t in bundle.tasks}


def model_key(bundle) -> str:
    return re.sub(r"[^0-9A-Za-z_.\-]+", "_", str(bundle.model_id)).strip("_") or "model"


# ----------------------------------------------------------------------------- stages


def _stage_options(bundle, options: ScoreOptions):
    """(PrepareOptions, EmbedOptions) exactly as recorded in the trained model's features metadata;
    the models they name are checked first (a model directory is untrusted data)."""
    from . import stages

    return stages.stage_options(bundle.features_metadata, options, source=bundle.config_path,
                                untrusted_root=bundle.path)


def score_config(bundle, options: ScoreOptions) -> dict[str, Any]:
    """What decides a score part's content (its hash is the part's config_hash)."""
    from . import stages

    prep, emb = _stage_options(bundle, options)
    return {
        "model_id": bundle.model_id,
        "model_version": str(bundle.tool_version),
        "prepare": stages.prepare_hash(prep),
        "embed": stages.embed_hash(emb),
        "embeddings": bool(options.embeddings),
        "columns": 2,  # 2: raw_probabilities (parts of older columns are scored again)
    }


def part_path(work_dir: Path, key: str, recording_id: str) -> Path:
    return output_path(Path(work_dir), f"score/{key}", recording_id)


def part_is_done(path: Path, config_hash: str) -> bool:
    if not is_complete(path, config_hash):
        return False
    try:
        return ScorePartMeta.read(path).status == "ok"
    except InputError:
        return False


def _is_scored(work_dir: Path, key: str, config_hash: str, rec: Recording, explain: bool = False) -> bool:
    """Done: its score part is (status ok), and with explain its evidence part too."""
    if not part_is_done(part_path(work_dir, key, rec.recording_id), config_hash):
        return False
    from . import evidence

    return not explain or evidence.part_is_done(work_dir, key, config_hash, rec.recording_id)


def scored_facts(rec: Recording, worker: "ScoreWorker") -> dict:
    """The manifest's facts of a recording: words and speakers from its prepare words table,
    length and segments from its score part (a NoSpeech part: 0 segments)."""
    from ..prepare.pipeline import words_path

    facts = manifest.words_facts(words_path(worker.options.work_dir, rec.recording_id), worker.config["prepare"])
    path = part_path(worker.options.work_dir, worker.key, rec.recording_id)
    if is_complete(path, worker.config_hash):
        row = pq.read_table(path, columns=["duration_s", "n_segments", "error_type"]).slice(0, 1).to_pylist()
        if row:
            no_speech = row[0]["error_type"] == NoSpeech.__name__
            facts.update(duration_s=row[0]["duration_s"] if row[0]["duration_s"] is not None else facts.get("duration_s"),
                         n_segments=0 if no_speech else row[0]["n_segments"])
    facts["no_speech"] = False  # score's no speech is a failure (NoSpeech), not a result
    return facts


def manifest_dir(out_path: Path) -> Path:
    """Where a run's manifest parts go, beside its table (see the module docstring)."""
    return beside_table(out_path, "manifest")


def beside_table(out_path: Path, what: str) -> Path:
    """A directory for `what` next to the scores table, out of any glob of the scores:
    scores.parquet -> scores.<what>/; DIR/part-K-of-N.parquet -> DIR/_<what>/."""
    if _PART_NAME.fullmatch(out_path.name):
        return out_path.parent / f"_{what}"
    return out_path.with_name(_PART_NAME.sub("", out_path.name).removesuffix(".parquet") + f".{what}")


_PART_NAME = re.compile(r"\.?part-\d+-of-\d+\.parquet$")


class ScoreWorker:
    """Scores one recording per call (writes its part atomically, returns its audio seconds).

    Built once per process (or per Ray actor) from picklable options; the model and every
    stage's models load lazily, once.
    """

    def __init__(self, options: ScoreOptions):
        self.options = options
        self._bundle = None
        self._stages = None
        self.timings: dict[str, float] = {}

    @property
    def bundle(self):
        if self._bundle is None:
            self._bundle = load_bundle(self.options.model_dir)
        return self._bundle

    @property
    def stages(self):
        if self._stages is None:
            from .stages import StageRunner

            prep, emb = _stage_options(self.bundle, self.options)
            self._stages = StageRunner(prep, emb, self.options.work_dir)
        return self._stages

    @functools.cached_property
    def classes(self) -> dict[str, list[str]]:
        return task_classes(self.bundle)

    @functools.cached_property
    def schema(self) -> pa.Schema:
        return scores_schema(self.classes, self.options.embeddings)

    @functools.cached_property
    def key(self) -> str:
        return model_key(self.bundle)

    @functools.cached_property
    def config(self) -> dict:
        return score_config(self.bundle, self.options)

    @functools.cached_property
    def config_hash(self) -> str:
        return options_hash(self.config)

    def _tick(self, stage: str, t0: float) -> float:
        t = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (t - t0)
        return t

    def __call__(self, rec: Recording) -> float:
        path = part_path(self.options.work_dir, self.key, rec.recording_id)
        meta = ScorePartMeta.current(config_hash=self.config_hash, recording_id=rec.recording_id,
                                     score_config=self.config)
        duration = None
        stage = "prepare"
        try:
            t = time.perf_counter()
            words, prep_meta, duration = self.stages.prepare(rec)
            t = self._tick("prepare", t)
            stage = "embed"
            audio_emb, text_emb = self.stages.embed(rec, words, prep_meta)
            if len(audio_emb) == 0:
                raise NoSpeech("no speech segments for the target speaker: nothing to score")
            t = self._tick("embed", t)
            stage = "model"
            # the same statistics embed records in the features file (a model trained with them needs them)
            preds = self.bundle.predict(audio_emb, text_emb, doc_stats=document_stats(words, len(audio_emb)))
            self._tick("model", t)
            check_finite(preds, self.options.embeddings)
            rows = self._rows(rec, preds, len(audio_emb), duration)
            if self.options.explain:  # before the score part, which marks the recording done
                stage = "evidence"
                self._write_evidence(rec, preds, len(audio_emb))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            row = {
                "recording_id": rec.recording_id, "status": "error", "duration_s": duration,
                "tool_version": __version__, "model_id": str(self.bundle.model_id),
                "model_version": str(self.bundle.tool_version),
                "error_stage": getattr(exc, "hilbert_stage", stage),
                "error_type": exc.__class__.__name__, "error_message": one_line(exc),
            }
            meta.model_copy(update={"status": "error"}).write_table(rows_to_table([row], self.schema), path)
            raise
        meta.model_copy(update={"status": "ok"}).write_table(rows_to_table(rows, self.schema), path)
        return float(duration or 0.0)

    def _write_evidence(self, rec: Recording, preds, n_segments: int) -> None:
        """The recording's evidence part: every segment's attention rank per task and view."""
        from . import evidence

        segments = evidence.recording_segments(self.stages.features_path(rec.recording_id), self.options.work_dir,
                                               rec.recording_id, n_segments)
        variants = {t: str(m.config.get("variant", "")) for t, m in self.bundle.models.items()}
        table = evidence.rows_table(evidence.evidence_rows(rec.recording_id, preds, segments, variants))
        write_table_atomic(table, evidence.part_path(self.options.work_dir, self.key, rec.recording_id),
                           {"stage": "score/evidence", "recording_id": rec.recording_id,
                            "config_hash": evidence.evidence_hash(self.config_hash)})

    def _rows(self, rec: Recording, preds, n_segments: int, duration) -> list[dict]:
        rows = []
        for p in preds:
            probs = [float(x) for x in np.asarray(p.probs, dtype=np.float64).ravel()]
            names = [str(c) for c in p.class_names]
            row = {
                "recording_id": rec.recording_id, "task": p.task, "status": "ok", "label": str(p.label),
                "class_names": names, "probabilities": probs, "n_segments": int(n_segments),
                "raw_probabilities": None if p.raw_probs is None else
                [float(x) for x in np.asarray(p.raw_probs, dtype=np.float64).ravel()],
                "duration_s": None if duration is None else float(duration),
                "model_id": str(self.bundle.model_id),
                "model_version": str(self.bundle.tool_version),
                "tool_version": __version__,
            }
            for c, v in zip(names, probs):
                row[prob_column(c)] = v
            if self.options.embeddings:
                for k in EMBEDDING_KEYS:
                    v = p.embeddings.get(k) if p.embeddings else None
                    row[k] = None if v is None else np.asarray(v, dtype=np.float32).ravel().tolist()
            rows.append(row)
        return rows


# ----------------------------------------------------------------------------- assembly


def shard_output_path(out: str | os.PathLike, shard: Shard) -> Path:
    """Where a run's table goes.

    `--out scores.parquet`: that file (with --shard K/N, N > 1: scores.part-K-of-N.parquet);
    `--out DIR/` (an existing directory, a trailing slash, or no .parquet suffix):
    DIR/part-K-of-N.parquet (part-0-of-1.parquet unsharded), so DIR is a dataset of shards.
    """
    text = str(out)
    p = Path(out).expanduser()
    tag = f"part-{shard.index}-of-{shard.count}"
    if text.endswith(("/", os.sep)) or p.is_dir() or p.suffix.lower() != ".parquet":
        return p / f"{tag}.parquet"
    if shard.count == 1:
        return p
    return p.with_name(f"{p.stem}.{tag}{p.suffix}")


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
    if is_complete(path, worker.config_hash):
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
    source: str | os.PathLike | list[Recording],
    options: ScoreOptions,
    out: str | os.PathLike,
    *,
    shard: Shard | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    engine: str = "local",
    engine_options: dict | None = None,
) -> ScoreRun:
    """Score every recording of `source` (directory, file, list file, or Recordings) in `shard`."""
    shard = shard or Shard()
    if isinstance(source, (list, tuple)):
        recordings, n_ignored = list(source), 0
    else:
        recordings, skipped = discover(source)
        n_ignored = len(skipped)
    ignored = [] if isinstance(source, (list, tuple)) else skipped
    recordings = select_shard(recordings, shard)
    worker = ScoreWorker(options)
    _ = worker.config_hash, worker.schema  # fail fast (one line) on a bad model dir before any work
    key, chash = worker.key, worker.config_hash
    is_done = functools.partial(_is_scored, options.work_dir, key, chash, explain=options.explain)
    accounting = {"describe": functools.partial(scored_facts, worker=worker), "config_hash": chash}
    result = run_batch(
        recordings, stage=STAGE, out_root=options.work_dir, make_process=lambda: worker,
        is_done=is_done, overwrite=overwrite, show_progress=show_progress,
        engine=engine, engine_options=engine_options, **accounting,
    ) if engine == "local" else run_batch(
        recordings, stage=STAGE, out_root=options.work_dir,
        make_process=functools.partial(ScoreWorker, options),
        is_done=is_done, overwrite=overwrite, show_progress=show_progress,
        engine=engine, engine_options=engine_options, **accounting,
    )
    out_path = shard_output_path(out, shard)
    n_rows = assemble(recordings, worker, out_path, {
        "model_id": worker.bundle.model_id, "config_hash": chash, "shard": [shard.index, shard.count],
        "n_recordings": len(recordings), "options": {
            "model_dir": str(options.model_dir), "embeddings": options.embeddings,
        },
    })
    evidence_path, n_evidence = None, 0
    if options.explain:
        from .evidence import assemble_evidence

        evidence_path, n_evidence = assemble_evidence(recordings, worker, out_path, top_k=options.explain_top,
                                                      shard=shard, extra_meta={"model_id": worker.bundle.model_id})
    manifest.finish(result, manifest_dir(out_path), shard=shard, ignored=ignored,
                    extra_meta={"model_id": worker.bundle.model_id, "scores": out_path.name})
    return ScoreRun(result, out_path, n_rows, len(recordings), n_ignored, dict(worker.timings),
                    evidence_path, n_evidence)
