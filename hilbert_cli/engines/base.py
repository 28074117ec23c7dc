"""The Engine interface and what every engine does per recording (docs/ARCHITECTURE.md, "Engines").

An engine runs a chain of stages (hilbert_cli.stages.Stage) over recordings: each recording
goes through the stages in order, a recording that fails in one stage is not handed to the
later ones. `attempt` is the one place a recording is checked for resume, processed, and turned
into an error row on failure (or has its old error row cleared on success); `Engine.run` is the
one place the manifest rows are built from what the engine recorded. The local engine
(engines/local.py) and the Ray engine (engines/ray.py) differ only in where `attempt` runs.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import manifest
from ..batch import BatchResult, Recording, add_seconds, as_text, clear_error, record_failure
from ..console import console
from ..parquet_io import clean_stale_temps
from ..stages import Stage

DONE, SKIPPED, FAILED, BLOCKED = "done", "skipped", "failed", "blocked"

#: environment variables that size a process's native thread pools
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class WorkerLost(RuntimeError):
    """The worker process died (crash in native code, OOM kill, lost node) while handling a recording."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one recording in one stage: the small row that travels back to the driver."""

    status: str
    audio_s: float = 0.0
    seconds: float = 0.0  # wall seconds spent (0 when skipped)
    error: dict | None = None  # the error row when it failed
    timings: dict | None = None  # seconds per step, where the stage times its steps (Stage.take_timings)


def limit_threads(threads: int) -> None:
    """This worker process on `threads` CPU threads (its --jobs share, a Ray actor's num_cpus):
    the OpenMP/MKL/OpenBLAS pools (read when they start), torch, and NumPy's BLAS pool, which
    started with the imports (pyarrow loads numpy) before the variables were set."""
    import sys

    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    if "torch" in sys.modules:  # already started (a stage module imported it): tell it too
        sys.modules["torch"].set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def attempt(rec: Recording, *, name: str, out_root: Path, process: Callable[[Recording], Any],
            is_done: Callable[[Recording], bool] | None = None, before: Callable[[], None] | None = None) -> Outcome:
    """Run one stage on one recording: skipped when `is_done` (pass None to force), else
    `before()` then `process(rec)`; any failure becomes the recording's error row, a success
    clears an old one. A full disk stops the batch (batch.record_failure raises DiskFull)."""
    t0 = time.perf_counter()
    try:
        if is_done is not None and is_done(rec):
            return Outcome(SKIPPED)
        if before is not None:
            before()
        audio_s = process(rec)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one bad recording never stops the batch
        return Outcome(FAILED, seconds=time.perf_counter() - t0, error=record_failure(out_root, name, rec, exc))
    clear_error(out_root, name, rec.recording_id)
    return Outcome(DONE, float(audio_s or 0.0), time.perf_counter() - t0)


def timed(outcome: Outcome, stage: Any) -> Outcome:
    """`outcome` with the seconds per step `stage` spent on the recording (when it is a Stage
    that times its steps), so they travel back from a worker process or Ray actor with it."""
    steps = stage.take_timings() if isinstance(stage, Stage) else None
    return replace(outcome, timings=steps) if steps else outcome


def _in_turn(stages: Sequence[Any], step: Callable[[Any], Outcome]) -> list[Outcome]:
    """`step` on each stage in turn; after a failure the rest are BLOCKED, not run."""
    out: list[Outcome] = []
    for stage in stages:
        out.append(Outcome(BLOCKED) if out and out[-1].status in (FAILED, BLOCKED) else step(stage))
    return out


def run_chain(rec: Recording, stages: Sequence[Stage], overwrite: bool) -> list[Outcome]:
    """`rec` through every stage in turn; after a failure the rest are BLOCKED."""
    return _in_turn(stages, lambda stage: timed(attempt(rec, name=stage.name, out_root=stage.out_root, process=stage,
                                                        is_done=None if overwrite else stage.is_done), stage))


def lost_outcomes(rec: Recording, stages: Sequence[tuple[str, Path, Callable[[Recording], bool]]],
                  exc: BaseException, overwrite: bool = False) -> list[Outcome]:
    """The outcomes of a recording whose worker died: skipped in the stages (name, out_root,
    is_done) it is done for (none with `overwrite`), `exc`'s error row in the first it is not,
    blocked in the rest."""

    def lost(stage: tuple[str, Path, Callable[[Recording], bool]]) -> Outcome:
        name, out_root, is_done = stage
        try:
            done = not overwrite and is_done(rec)
        except Exception:
            done = False
        return Outcome(SKIPPED) if done else Outcome(FAILED, error=record_failure(out_root, name, rec, exc))

    return _in_turn(stages, lost)


def record(results: Sequence[BatchResult], rid: str, outcomes: Sequence[Outcome]) -> None:
    """Add one recording's outcomes to the stages' results (and say so when one failed)."""
    for res, o in zip(results, outcomes):
        add_seconds(res.timings, o.timings or {})
        if o.status in (DONE, FAILED):
            res.seconds[rid] = o.seconds
        if o.status == DONE:
            res.done.append(rid)
            res.audio_s += o.audio_s
        elif o.status == SKIPPED:
            res.skipped.append(rid)
        elif o.status == FAILED:
            res.failed.append(o.error)
            console.print(f"[red]failed[/] {as_text(rid)}: {o.error['message']}", soft_wrap=True)


def progress_status(results: Sequence[BatchResult], t0: float) -> str:
    audio = max((r.audio_s for r in results), default=0.0)
    elapsed = time.perf_counter() - t0
    rt = f"{audio / elapsed:.1f}x RT" if audio and elapsed > 0 else ""
    return f"{audio / 3600:.2f} h audio {rt} {sum(len(r.failed) for r in results)} failed"


class Engine(ABC):
    """Runs a chain of stages over recordings; one BatchResult per stage, in order, each with
    its manifest rows. Engines differ in where the recordings are processed, never in what
    they write: the same outputs, error rows, resume and manifest."""

    name: str = "engine"
    #: True when the stages of a chain run at the same time on separate workers (Ray's pools), so
    #: splitting a pass into stages (score: prepare on CPUs, embed + model on GPUs) pays off
    pipelined: bool = False

    def run(self, recordings: Sequence[Recording], stages: Sequence[Stage], *, overwrite: bool = False,
            show_progress: bool = True) -> list[BatchResult]:
        if not stages:
            raise ValueError("an engine needs at least one stage")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            from ..errors import ConfigError

            raise ConfigError(f"stage names must differ (got {names})")
        recordings = list(recordings)
        for root in dict.fromkeys(Path(s.out_root) for s in stages):
            clean_stale_temps(root)  # left in the work dir by killed runs (never a live run's)
        results = self._run(recordings, list(stages), overwrite, show_progress)
        for res, stage in zip(results, stages):
            res.rows = manifest.batch_rows(res, recordings, describe=stage.describe, config_hash=stage.config_hash)
        return results

    def run_stage(self, recordings: Sequence[Recording], stage: Stage, **kwargs: Any) -> BatchResult:
        """One stage alone."""
        return self.run(recordings, [stage], **kwargs)[0]

    @abstractmethod
    def _run(self, recordings: list[Recording], stages: list[Stage], overwrite: bool,
             show_progress: bool) -> list[BatchResult]:
        """Fill one BatchResult per stage (done, skipped, failed, audio_s, seconds, wall_s)."""
