"""The stage-level Python API: what `hilbert prepare`, `embed` and `score` call after parsing.

    from hilbert_cli import run_prepare, run_embed, run_score
    prep = run_prepare("interviews/", "work/", {"diarization": "vad-cluster"})  # -> PrepareResult
    emb = run_embed("work/", {"audio": "spec", "text": "allMiniLM6"})          # -> EmbedResult
    scores = run_score("interviews/", "runs/parent/models/affect", "scores.parquet", work="work/")

Each returns one typed result: the recordings done now (`ok`), already done (`skipped`), failed
(`failed`: their error rows) and passed over (`ignored`), the paths written, the manifest path,
`exit_code` and `summary()`. Options are the stages' own models (PrepareOptions, EmbedOptions)
or plain dicts of their fields; a bad value is a one-line ConfigError. Models are checked before
any recording is touched (a missing model fails at once, with nothing written). The names are
`run_*` because `hilbert_cli.prepare` and `hilbert_cli.embed` are the stages' packages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from .batch import BatchResult, Recording, Shard, Skipped, discover
from .errors import ConfigError, InputError

if TYPE_CHECKING:
    from .embed.options import EmbedOptions
    from .engines.base import Engine
    from .prepare.options import PrepareOptions

#: a directory, an audio file or a list file; Recordings; or what `discover` returned
Input = Union[str, "os.PathLike[str]", Sequence[Recording], tuple]


@dataclass(kw_only=True)
class RunResult:
    """What one run of a stage did, by recording (from its manifest rows, like the exit code)."""

    stage: str
    ok: list[str]  # processed by this run (ok or no speech)
    skipped: list[str]  # already done with the same options
    failed: list[dict]  # one error row each (recording_id, error_type, message, ...)
    ignored: list[Skipped] = field(default_factory=list)  # hidden or not an audio extension
    manifest_path: Path | None = None
    batch: BatchResult

    @property
    def exit_code(self) -> int:
        return self.batch.exit_code

    def summary(self) -> str:
        return self.batch.summary()

    @classmethod
    def _of(cls, batch: BatchResult, ignored: Sequence[Skipped] = (), **paths: Any) -> Any:
        return cls(stage=batch.stage, ok=list(batch.done), skipped=list(batch.skipped), failed=list(batch.failed),
                   ignored=list(ignored), manifest_path=batch.manifest_path, batch=batch, **paths)


@dataclass(kw_only=True)
class PrepareResult(RunResult):
    work_dir: Path
    words_dir: Path  # one words table per recording
    turns_dir: Path  # one turns table per recording


@dataclass(kw_only=True)
class EmbedResult(RunResult):
    work_dir: Path
    features_dir: Path  # one features table per recording (what train reads)
    segments_dir: Path


@dataclass(kw_only=True)
class ScoreResult(RunResult):
    scores_path: Path  # the scores table (one row per recording and task)
    n_rows: int
    n_recordings: int
    work_dir: Path
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step (prepare, embed, model)
    evidence_path: Path | None = None  # with explain: the evidence table
    n_evidence_rows: int = 0


def _found(source: Input) -> tuple[list[Recording], list[Skipped]]:
    if isinstance(source, tuple) and len(source) == 2 and not isinstance(source[0], Recording):
        return list(source[0]), list(source[1])  # discover()'s answer
    if isinstance(source, (list, tuple)):
        return list(source), []
    return discover(source)


def _shard(shard: Shard | str | None) -> Shard | None:
    return Shard.parse(shard) if isinstance(shard, str) else shard


def _options(cls: Any, options: Any, what: str) -> Any:
    if options is None:
        return cls()
    if isinstance(options, cls):
        return options
    if isinstance(options, Mapping):
        if hasattr(cls, "build"):
            return cls.build(**options)
        from pydantic import ValidationError

        from .contracts.base import validation_line

        try:
            return cls(**options)
        except ValidationError as exc:
            raise ConfigError(f"{what} option {validation_line(exc, default='options')}") from None
    raise ConfigError(f"{what} options: expected {cls.__name__} or a dict, got {type(options).__name__}")


def run_prepare(source: Input, out: str | os.PathLike, options: "PrepareOptions | Mapping | None" = None, *,
                shard: Shard | str | None = None, overwrite: bool = False, low_memory: bool = False,
                engine: "str | Engine" = "local", engine_options: Mapping[str, Any] | None = None, jobs: int = 1,
                progress: bool = True, check_models: bool = True) -> PrepareResult:
    """Recordings -> OUT/prepare/words/ and OUT/prepare/turns/ (docs/ARCHITECTURE.md, "Stages")."""
    from .engines.runner import get_engine
    from .prepare import PrepareOptions, prepare_recordings  # the package's names, looked up per call
    from .prepare.stage import check_low_memory, load_models
    from .prepare.stage import check_models as check

    opts = _options(PrepareOptions, options, "prepare")
    eng = get_engine(engine, engine_options, jobs=jobs)
    check_low_memory(low_memory, jobs)
    recordings, skipped = _found(source)
    preparer = None
    if check_models and eng.name == "local":  # (a Ray cluster's actors load theirs; each fails in its rows)
        if jobs > 1:
            check(opts)  # each worker process loads its own models: here they are only checked
        else:
            preparer = load_models(opts, low_memory=low_memory)
    work = Path(out)
    res = prepare_recordings(recordings, opts, work, overwrite=overwrite, shard=_shard(shard), show_progress=progress,
                             engine=eng, preparer=preparer, low_memory=low_memory, ignored=skipped)
    return PrepareResult._of(res, skipped, work_dir=work, words_dir=work / "prepare" / "words",
                             turns_dir=work / "prepare" / "turns")


def run_embed(work: str | os.PathLike, options: "EmbedOptions | Mapping | None" = None, *,
              shard: Shard | str | None = None, overwrite: bool = False, engine: "str | Engine" = "local",
              engine_options: Mapping[str, Any] | None = None, jobs: int = 1, progress: bool = True,
              check_models: bool = True) -> EmbedResult:
    """WORK/prepare/words/ -> WORK/features/<audio>__<text>/ and WORK/embed/segments/."""
    from .embed.cache import segment_key
    from .embed.options import EmbedOptions
    from .embed.pipeline import check_models as check, discover_prepared, embed_work_dir, features_dir
    from .engines.runner import get_engine

    opts = _options(EmbedOptions, options, "embed")
    eng = get_engine(engine, engine_options, jobs=jobs)
    work_dir = Path(work)
    recordings = discover_prepared(work_dir)
    if not recordings:
        raise InputError(f"no recordings found under {work_dir / 'prepare' / 'words'} (did every `hilbert prepare` fail?)")
    if check_models:
        check(opts)  # one line now if an encoder is not available; loads nothing
    res = embed_work_dir(work_dir, opts, recordings=recordings, overwrite=overwrite, shard=_shard(shard),
                         show_progress=progress, engine=eng)
    return EmbedResult._of(res, work_dir=work_dir, features_dir=features_dir(work_dir, opts),
                           segments_dir=work_dir / "embed" / "segments" / segment_key(opts.segment.model_dump()))


def run_score(source: Input, model: str | os.PathLike, out: str | os.PathLike = "scores.parquet", *,
              work: str | os.PathLike | None = None, embeddings: bool = False, explain: bool = False,
              explain_top: int | None = None, transcripts: str | os.PathLike | None = None, device: str = "auto",
              shard: Shard | str | None = None, overwrite: bool = False, engine: "str | Engine" = "local",
              engine_options: Mapping[str, Any] | None = None, jobs: int = 1, progress: bool = True) -> ScoreResult:
    """Recordings + a trained model directory -> a scores table (`out`: a .parquet file, or a
    directory that receives part-K-of-N.parquet). `work` caches every stage's outputs
    (default: hilbert_work/ next to the table) and is shared by shards and re-runs."""
    from .devices import pick_device
    from .engines.runner import get_engine
    from .scoring.evidence import DEFAULT_TOP
    from .scoring.pipeline import ScoreOptions, score_recordings, shard_output_path

    sh = _shard(shard) or Shard()
    eng = get_engine(engine, engine_options, jobs=jobs)
    pick_device(device)  # one line now if the device is not there
    out_path = shard_output_path(out, sh)
    work_dir = Path(work) if work is not None else out_path.parent / "hilbert_work"
    opts = ScoreOptions(model_dir=Path(model), work_dir=work_dir, embeddings=embeddings, device=device,
                        transcripts=transcripts, explain=explain or explain_top is not None,
                        explain_top=explain_top or DEFAULT_TOP)
    found = _found(source)
    run = score_recordings(list(found[0]), opts, out, shard=sh, overwrite=overwrite, show_progress=progress,
                           engine=eng, ignored=found[1])
    return ScoreResult._of(run.result, found[1], scores_path=run.out_path, n_rows=run.n_rows,
                           n_recordings=run.n_recordings, work_dir=work_dir, timings=dict(run.timings),
                           evidence_path=run.evidence_path, n_evidence_rows=run.n_evidence_rows)
