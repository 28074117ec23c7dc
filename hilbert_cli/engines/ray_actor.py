"""The Ray engine's stages: per-actor settings (``StageSpec``, pool sizes) and the actor that
runs one stage (``StageActor``), with its attempt counters.

Each attempt at a recording is counted in ``<out_root>/.ray-attempts/<stage>/<recording_id>.n``
(with the run's id); a retry is processed again even if the dead worker had finished writing
(so it is reported as done, with its audio seconds), and a recording whose worker dies
``max_attempts`` times (a decoder crash, the OOM killer) gets an error row of type
``WorkerLost`` instead of another retry, so one poison file cannot stall the batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import pyarrow as pa

from ..batch import Recording, output_path
from ..errors import ConfigError, one_line
from ..parquet_io import atomic_write
from ..stages import Stage
from .base import BLOCKED, FAILED, SKIPPED, Outcome, WorkerLost, attempt, limit_threads, timed

#: a per-actor setting: one value for every stage, or {stage: value} with "*" as the default
PerStage = Union[float, int, str, tuple, Mapping[str, Any], None]

ATTEMPTS_DIR = ".ray-attempts"
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class StageSpec:
    """One batch stage as the Ray engine runs it: a pool of actors, each with one worker.

    make_process: picklable factory; ``make_process()`` returns ``process(rec) -> audio seconds``
      that writes the recording's outputs atomically (models loaded lazily, once per actor).
    is_done: picklable ``is_done(rec) -> bool`` (resume).
    out_root: where the stage's error rows go (``errors/<stage>/...``) and attempt counters.
    num_cpus / num_gpus / memory (bytes): reserved per actor; num_gpus "auto": 1 when the
      cluster has a GPU, else 0 (what a model stage wants by default).
    concurrency: actors in the pool: N (fixed), (MIN, MAX) (autoscaling), or None: one stage
      alone gets a fixed pool as large as the cluster allows; stages of a chain autoscale
      from 1 up to that, so they share the cluster.
    """

    stage: str
    make_process: Callable[[], Callable[[Recording], float | None]]
    is_done: Callable[[Recording], bool]
    out_root: Path
    num_cpus: float = 1.0
    num_gpus: float | str = 0.0
    concurrency: int | tuple[int, int] | None = None
    memory: float | None = None


# ----------------------------------------------------------------------------- settings


def per_stage(value: PerStage, stage: str, default: Any = None) -> Any:
    """The value for `stage` from a scalar or a {stage: value, "*": default} mapping."""
    if value is None:
        return default
    if isinstance(value, Mapping):
        return value.get(stage, value.get("*", default))
    return value


def with_overrides(
    spec: StageSpec,
    *,
    num_cpus: PerStage = None,
    num_gpus: PerStage = None,
    concurrency: PerStage = None,
    memory: PerStage = None,
) -> StageSpec:
    """`spec` with the user's engine options (``--ray-num-cpus`` etc.) applied to its stage."""
    cpus = per_stage(num_cpus, spec.stage, spec.num_cpus)
    gpus = per_stage(num_gpus, spec.stage, spec.num_gpus)
    conc = per_stage(concurrency, spec.stage, spec.concurrency)
    mem = per_stage(memory, spec.stage, spec.memory)
    if cpus is None or float(cpus) < 0:
        raise ConfigError(f"{spec.stage}: --ray-num-cpus must be >= 0 (got {cpus})")
    if isinstance(gpus, str) and gpus.strip().lower() == "auto":
        gpus = "auto"
    elif gpus is None or float(gpus) < 0:
        raise ConfigError(f"{spec.stage}: --ray-num-gpus must be >= 0 or auto (got {gpus})")
    else:
        gpus = float(gpus)
    if isinstance(conc, (list, tuple)):
        lo, hi = (int(x) for x in conc)
        if not 1 <= lo <= hi:
            raise ConfigError(f"{spec.stage}: --ray-concurrency MIN-MAX needs 1 <= MIN <= MAX (got {lo}-{hi})")
        conc = (lo, hi)
    elif conc is not None:
        conc = int(conc)
        if conc < 1:
            raise ConfigError(f"{spec.stage}: --ray-concurrency must be >= 1 (got {conc})")
    return replace(spec, num_cpus=float(cpus), num_gpus=gpus, concurrency=conc,
                   memory=None if mem is None else float(mem))


def resolve_gpus(spec: StageSpec, cluster: Mapping[str, float]) -> StageSpec:
    """num_gpus "auto" -> 1.0 when the cluster has a GPU, else 0.0."""
    if spec.num_gpus == "auto":
        return replace(spec, num_gpus=1.0 if float(cluster.get("GPU", 0)) >= 1 else 0.0)
    return spec


def _pool_bounds(spec: StageSpec, n_todo: int, cluster: Mapping[str, float], chained: bool) -> tuple[int, int]:
    """(min_size, max_size) of the stage's actor pool, never more actors than recordings."""
    spec = resolve_gpus(spec, cluster)
    n = max(1, n_todo)
    if isinstance(spec.concurrency, tuple):
        lo, hi = spec.concurrency
        return min(lo, n), min(hi, n)
    if isinstance(spec.concurrency, int):
        k = min(spec.concurrency, n)
        return k, k
    if spec.num_gpus > 0:
        have = float(cluster.get("GPU", 0))
        cap = int(math.floor(have / spec.num_gpus + 1e-9))
        if cap < 1:
            raise ConfigError(
                f"{spec.stage}: each actor asks for {spec.num_gpus:g} GPU but the Ray cluster has {have:g}; "
                "pass --ray-num-gpus 0, or --ray-concurrency N on an autoscaling cluster"
            )
    else:
        have = float(cluster.get("CPU", 1))
        cap = int(math.floor(have / spec.num_cpus + 1e-9)) if spec.num_cpus > 0 else int(have)
        if cap < 1:
            raise ConfigError(
                f"{spec.stage}: each actor asks for {spec.num_cpus:g} CPU but the Ray cluster has {have:g}; "
                "lower --ray-num-cpus, or pass --ray-concurrency N on an autoscaling cluster"
            )
    cap = min(cap, n)
    return (1, cap) if chained else (cap, cap)


def _check_picklable(spec: StageSpec) -> None:
    from ray import cloudpickle

    for name in ("make_process", "is_done"):
        try:
            cloudpickle.dumps(getattr(spec, name))
        except Exception as exc:
            raise ConfigError(
                f"{spec.stage}: the ray engine needs a picklable {name} (a functools.partial of a "
                f"module-level class or function): {one_line(exc)}"
            ) from None


# ----------------------------------------------------------------------------- attempts


def _attempts_path(out_root: Path, stage: str, recording_id: str) -> Path:
    return output_path(Path(out_root), f"{ATTEMPTS_DIR}/{stage}", recording_id, ".n")


def _read_attempts(path: Path, run_id: str) -> int:
    """Attempts at this recording so far in this run (0: none, or only in an earlier run)."""
    try:
        rid, n = path.read_text().split()
        return int(n) if rid == run_id else 0
    except (OSError, ValueError):
        return 0


def _write_attempts(path: Path, run_id: str, n: int) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(f"{run_id} {n}"))


def _clear_attempts(path: Path) -> None:
    path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the actor


def _status_columns(index: int) -> tuple[str, str, str]:
    return f"s{index}_status", f"s{index}_audio_s", f"s{index}_error"


def _seconds_column(index: int) -> str:
    """Wall seconds the actor spent on the recording (the manifest's `seconds`, as the local engine measures it)."""
    return f"s{index}_seconds"


def _timings_column(index: int) -> str:
    """The stage's seconds per step on the recording, as JSON (Outcome.timings; null when untimed)."""
    return f"s{index}_timings"


def actor_threads(num_cpus: float) -> int:
    """An actor's CPU threads: the whole CPUs it reserves (at least one), so the actors Ray packs
    onto a node never ask for more threads than its cores (Ray sets OMP_NUM_THREADS likewise)."""
    return max(1, int(num_cpus))


class StageActor:
    """A long-lived Ray actor for one stage: builds the stage worker once, then handles blocks.

    Each block is a pyarrow table of recordings (recording_id, path); the actor appends the
    stage's status columns (status, audio seconds, the error row as JSON when it failed).
    """

    def __init__(
        self, spec: StageSpec, index: int, overwrite: bool, max_attempts: int, driver_cwd: str, run_id: str
    ):
        if driver_cwd and os.path.isdir(driver_cwd):
            os.chdir(driver_cwd)  # relative paths mean what they meant on the driver
        self.spec = spec
        self.index = index
        self.overwrite = overwrite
        self.max_attempts = max_attempts
        self.run_id = run_id
        self.process = None
        self.init_error: BaseException | None = None
        threads = actor_threads(spec.num_cpus)
        limit_threads(threads)  # before any model loads: torch, BLAS and OpenMP pools
        try:
            self.process = spec.make_process()
            if isinstance(self.process, Stage):  # its own pools too (ASR workers, CTranslate2 threads)
                self.process = self.process.with_threads(threads)
        except Exception as exc:  # becomes each recording's error row, as a lazy load would
            self.init_error = exc

    def __call__(self, batch: pa.Table) -> pa.Table:
        import json

        outcomes = [self._one(row) for row in batch.to_pylist()]
        c_status, c_audio, c_error = _status_columns(self.index)
        batch = batch.append_column(c_status, pa.array([o.status for o in outcomes], pa.string()))
        batch = batch.append_column(c_audio, pa.array([o.audio_s for o in outcomes], pa.float64()))
        batch = batch.append_column(_seconds_column(self.index), pa.array([o.seconds for o in outcomes], pa.float64()))
        steps = [None if not o.timings else json.dumps(o.timings) for o in outcomes]
        batch = batch.append_column(_timings_column(self.index), pa.array(steps, pa.string()))
        errors = [None if o.error is None else json.dumps(o.error) for o in outcomes]
        return batch.append_column(c_error, pa.array(errors, pa.string()))

    def _one(self, row: Mapping[str, Any]) -> Outcome:
        for j in range(self.index):
            if row.get(_status_columns(j)[0]) in (FAILED, BLOCKED):
                return Outcome(BLOCKED)
        spec = self.spec
        rec = Recording(row["recording_id"], Path(os.fsdecode(row["path"])))
        path = _attempts_path(spec.out_root, spec.stage, rec.recording_id)
        # a retry after this run's worker died is processed again (idempotent rewrite),
        # even when the dead worker had already written it, so it counts as done
        before = _read_attempts(path, self.run_id) if self.max_attempts > 0 else 0

        def start() -> None:
            if self.max_attempts > 0:
                n = before + 1
                _write_attempts(path, self.run_id, n)
                if n > self.max_attempts:
                    raise WorkerLost(
                        f"the Ray worker died {n - 1} times while processing this recording "
                        "(a crash in native code or the out-of-memory killer?)"
                    )
            if self.init_error is not None:
                raise self.init_error

        out = timed(attempt(rec, name=spec.stage, out_root=spec.out_root, process=lambda r: self.process(r),
                            is_done=spec.is_done if before == 0 and not self.overwrite else None, before=start),
                    self.process)
        if out.status != SKIPPED:
            _clear_attempts(path)
        return out
