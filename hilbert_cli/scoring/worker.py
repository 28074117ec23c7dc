"""The score stage: one recording -> prepare -> embed -> the trained model -> its score part.

ScoreWorker is the Stage every engine runs for `hilbert score` (hilbert_cli.stages): built from
picklable ScoreOptions, it loads the trained model and every step's models lazily, once per
process (or Ray actor), and reuses any prepare or embed output already in the work directory
(scoring/stages.py: StageRunner, through PrepareStage and EmbedStage). Each recording gets one
score part, written atomically: status ok with its rows, or status error naming the step that
failed (the engine adds the error row). ScorePrepare is the prepare step as a stage of its own,
for an engine that runs a chain's stages on separate workers (Ray: CPU actors prepare while GPU
actors embed and score).
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__, manifest
from ..batch import Recording, options_hash, raise_if_disk_full
from ..contracts.scores import EMBEDDING_KEYS, ScorePartMeta, prob_column, rows_to_table, scores_schema
from ..embed.doc_stats import document_stats
from ..errors import ConfigError, HilbertError, one_line
from ..parquet_io import write_table_atomic
from ..stages import Stage, lazy
from .evidence import DEFAULT_TOP
from .paths import part_is_done, part_matches, part_path

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


def _is_scored(work_dir: Path, key: str, config_hash: str, rec: Recording, explain: bool = False) -> bool:
    """Done: its score part is (status ok), and with explain its evidence part too."""
    if not part_is_done(part_path(work_dir, key, rec.recording_id), config_hash, rec.path):
        return False
    from . import evidence

    return not explain or evidence.part_is_done(work_dir, key, config_hash, rec.recording_id)


def scored_facts(rec: Recording, worker: "ScoreWorker") -> dict:
    """The manifest's facts of a recording: words and speakers from its prepare words table,
    length and segments from its score part (a NoSpeech part: 0 segments)."""
    from ..prepare.pipeline import words_path

    facts = manifest.words_facts(words_path(worker.options.work_dir, rec.recording_id), worker.config["prepare"])
    path = part_path(worker.options.work_dir, worker.key, rec.recording_id)
    if part_matches(path, worker.config_hash, rec.path) is not None:
        row = pq.read_table(path, columns=["duration_s", "n_segments", "error_type"]).slice(0, 1).to_pylist()
        if row:
            no_speech = row[0]["error_type"] == NoSpeech.__name__
            facts.update(duration_s=row[0]["duration_s"] if row[0]["duration_s"] is not None else facts.get("duration_s"),
                         n_segments=0 if no_speech else row[0]["n_segments"])
    facts["no_speech"] = False  # score's no speech is a failure (NoSpeech), not a result
    return facts


class ScoreWorker(Stage):
    """The score stage (see the module docstring): `process` runs prepare -> embed -> model,
    `write` writes the evidence part (with explain) and then the score part, which marks the
    recording done; a failure at any step writes the recording's error part and is re-raised
    for the engine's error row."""

    name = STAGE
    num_gpus = "auto"  # a model stage: a GPU per Ray actor when the cluster has one

    def __init__(self, options: ScoreOptions):
        self.options = options
        self.out_root = Path(options.work_dir)
        self.timings: dict[str, float] = {}  # seconds per step since the engine last took them
        self.threads = 0  # CPU threads of this worker (with_threads); 0: the defaults

    @lazy
    def bundle(self):
        return load_bundle(self.options.model_dir)

    @lazy
    def stages(self):
        from .stages import StageRunner

        prep, emb = _stage_options(self.bundle, self.options)
        runner = StageRunner(prep, emb, self.options.work_dir)
        if self.threads:
            runner.prepare_stage.with_threads(self.threads)
        return runner

    def with_threads(self, threads: int) -> "ScoreWorker":
        """Prepare's ASR on this worker's share of the cores (PrepareStage.with_threads; torch and
        the native pools are the engine's), so N workers never ask for N x the cores."""
        self.threads = threads
        if self.loaded("stages") is not None:
            self.stages.prepare_stage.with_threads(threads)
        return self

    def take_timings(self) -> dict[str, float]:
        taken, self.timings = self.timings, {}
        return taken

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
    def config_hash(self) -> str:  # type: ignore[override]
        return options_hash(self.config)

    def outputs(self, rec: Recording) -> dict[str, Path]:
        from . import evidence

        part = {"score": part_path(self.options.work_dir, self.key, rec.recording_id)}
        if self.options.explain:  # written before the score part
            return {"evidence": evidence.part_path(self.options.work_dir, self.key, rec.recording_id), **part}
        return part

    def is_done(self, rec: Recording) -> bool:
        return _is_scored(self.options.work_dir, self.key, self.config_hash, rec, explain=self.options.explain)

    def describe(self, rec: Recording) -> dict:
        return scored_facts(rec, self)

    def _tick(self, stage: str, t0: float) -> float:
        t = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (t - t0)
        return t

    def process(self, rec: Recording) -> "_Scored":
        """Prepare -> embed -> model (no score part written); `self._step` names the step running."""
        self._step, self._duration = "prepare", None
        t = time.perf_counter()
        words, prep_meta, self._duration = self.stages.prepare(rec)
        t = self._tick("prepare", t)
        self._step = "embed"
        audio_emb, text_emb = self.stages.embed(rec, words, prep_meta)
        if len(audio_emb) == 0:
            raise NoSpeech("no speech segments for the target speaker: nothing to score")
        t = self._tick("embed", t)
        self._step = "model"
        # the same statistics embed records in the features file (a model trained with them needs them)
        preds = self.bundle.predict(audio_emb, text_emb, doc_stats=document_stats(words, len(audio_emb)))
        self._tick("model", t)
        check_finite(preds, self.options.embeddings)
        return _Scored(preds, len(audio_emb), self._duration)

    def write(self, rec: Recording, result: "_Scored") -> float:
        rows = self._rows(rec, result.preds, result.n_segments, result.duration)
        if self.options.explain:  # before the score part, which marks the recording done
            self._step = "evidence"
            self._write_evidence(rec, result.preds, result.n_segments)
        self._part_meta(rec, "ok").write_table(rows_to_table(rows, self.schema), self.outputs(rec)["score"])
        return float(result.duration or 0.0)

    def __call__(self, rec: Recording) -> float:
        try:
            return self.write(rec, self.process(rec))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            row = {
                "recording_id": rec.recording_id, "status": "error", "duration_s": self._duration,
                "tool_version": __version__, "model_id": str(self.bundle.model_id),
                "model_version": str(self.bundle.tool_version),
                "error_stage": getattr(exc, "hilbert_stage", self._step),
                "error_type": exc.__class__.__name__, "error_message": one_line(exc),
            }
            self._part_meta(rec, "error").write_table(rows_to_table([row], self.schema), self.outputs(rec)["score"])
            raise

    def _part_meta(self, rec: Recording, status: str) -> ScorePartMeta:
        return ScorePartMeta.current(config_hash=self.config_hash, recording_id=rec.recording_id,
                                     score_config=self.config, source_path=str(Path(rec.path).resolve()),
                                     status=status)

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


@dataclass
class _Scored:
    """What the model gave for one recording, before it is written."""

    preds: list
    n_segments: int
    duration: float | None


class ScorePrepare(Stage):
    """Score's prepare step as a stage of its own (see the module docstring). It never fails a
    recording: one it cannot prepare is prepared again by the score stage, which writes that
    recording's error part and error row, so errors land where a one-stage run puts them."""

    name = "score-prepare"

    def __init__(self, worker: ScoreWorker) -> None:
        self.worker = worker
        self.prepare = worker.stages.prepare_stage
        self.out_root = self.prepare.out_root
        self.config_hash = self.prepare.config_hash
        self.seconds = 0.0  # preparing, since the engine last took the timings

    def with_threads(self, threads: int) -> "ScorePrepare":
        self.prepare.with_threads(threads)
        return self

    def take_timings(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, 0.0
        return {"prepare": taken} if taken else {}

    def outputs(self, rec: Recording) -> dict[str, Path]:
        return self.prepare.outputs(rec)

    def is_done(self, rec: Recording) -> bool:
        """Scored already (nothing to prepare for), or prepared with the model's options."""
        return self.worker.is_done(rec) or self.prepare.is_done(rec)

    def __call__(self, rec: Recording) -> float:
        t0 = time.perf_counter()
        try:
            return self.prepare(rec)
        except Exception as exc:  # the score stage reports it; a full disk stops the batch here
            raise_if_disk_full(exc, rec)
            return 0.0
        finally:
            self.seconds += time.perf_counter() - t0
