"""The Ray engine: a chain of stages over a Ray cluster (``--engine ray``).

How a run goes (``RayEngine.run``; ``run_stages_ray`` for StageSpecs):

1. Connect (engines/ray_cluster.py): ``--ray-address`` auto, ray://HOST:10001, HOST:6379 or
   local (a one-machine cluster for this run).
2. Resume: the driver asks every stage's ``is_done`` for every recording (threads; a footer
   read each). Recordings done for every stage are reported as skipped and never reach Ray.
3. The rest become a Ray Dataset, one recording per block, so a retried block is one
   recording. Each stage is a ``map_batches`` over an actor pool (``ActorPoolStrategy``):
   the actor (engines/ray_actor.py) gets the stage once (``Stage.factory()``; models load
   lazily inside, once per actor) and keeps it for every recording it is handed.
   ``num_cpus`` / ``num_gpus`` / ``memory`` are reserved per actor and the pool size is set per
   stage, so a CPU stage and a GPU stage scale separately (``StageSpec``).
4. Inside the actor each recording goes through ``engines.base.attempt``, exactly as in the
   local engine: resume check, atomic writes on the shared file system, the same error row
   on failure. Only a small status row travels back to the driver, which fills the
   BatchResults and the progress bar as rows stream in; ``Engine.run`` builds the manifest.

Fault tolerance: Ray restarts a dead actor and retries its block. Writes are idempotent (same
path, atomic rename), so a retried recording is written again, never twice, and a recording
killed half way leaves no partial file; attempts are counted, and a recording whose worker
dies ``max_attempts`` times gets a ``WorkerLost`` error row (engines/ray_actor.py).

Requirements on a multi-node cluster: every node sees the inputs and the work/out
directories at the same paths (a shared file system); relative paths resolve against the
driver's working directory (the actors ``chdir`` there when it exists); ``hilbert-cli`` is
installed on every node (same image). Stages are pickled to the actors (options and paths;
docs/ARCHITECTURE.md, "Engines").

Chaining (``hilbert score``: prepare on CPU actors, then embed + model on GPU actors): a
recording flows from one pool to the next without returning to the driver; one that fails in
a stage gets its error row there and is not handed to the later stages (status ``blocked``,
counted in none of their lists).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..batch import BatchResult, Recording
from ..console import make_progress
from ..errors import ConfigError
from ..stages import Stage
from .base import Engine, Outcome, WorkerLost, lost_outcomes, progress_status, record
from .ray_actor import (DEFAULT_MAX_ATTEMPTS, PerStage, StageActor, StageSpec, _check_picklable, _pool_bounds,
                        _seconds_column, _status_columns, _timings_column, resolve_gpus, with_overrides)
from .ray_cluster import connect, import_ray, log_levels


@contextlib.contextmanager
def _data_context() -> Iterator[Any]:
    """Ray Data settings for a run: our own progress bar, failed blocks reported not fatal."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.max_errored_blocks)
    ctx.enable_progress_bars = False
    ctx.max_errored_blocks = -1  # a block lost for good is reported as an error row, below
    # Ray Data's INFO lines, and its notice that its own bars are off (ours is on)
    with log_levels({"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}):
        try:
            yield ctx
        finally:
            ctx.enable_progress_bars, ctx.max_errored_blocks = saved


def _done_flags(recordings: Sequence[Recording], stages: Sequence[StageSpec], threads: int) -> list[bool]:
    """For each recording: is it done for every stage (checked in parallel threads)?"""

    def all_done(rec: Recording) -> bool:
        for spec in stages:
            try:
                if not spec.is_done(rec):
                    return False
            except Exception:  # the actor checks again and reports the error row
                return False
        return True

    if len(recordings) <= 8 or threads <= 1:
        return [all_done(r) for r in recordings]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(all_done, recordings))


def run_stages_ray(
    recordings: Sequence[Recording],
    stages: Sequence[StageSpec],
    *,
    overwrite: bool = False,
    address: str | None = None,
    num_cpus: PerStage = None,
    num_gpus: PerStage = None,
    concurrency: PerStage = None,
    memory: PerStage = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    show_progress: bool = True,
    check_threads: int = 16,
    local_num_cpus: int | None = None,
) -> list[BatchResult]:
    """Run a chain of stages over `recordings` on Ray; one BatchResult per stage, in order.

    num_cpus / num_gpus / concurrency / memory override the StageSpecs' own values, each as
    one value or a {stage: value} mapping (what ``--ray-num-cpus prepare=2,score=1`` gives).
    """
    if not stages:
        raise ValueError("run_stages_ray needs at least one stage")
    import_ray()
    stages = [
        with_overrides(s, num_cpus=num_cpus, num_gpus=num_gpus, concurrency=concurrency, memory=memory)
        for s in stages
    ]
    stages = [replace(s, out_root=Path(os.path.abspath(s.out_root))) for s in stages]
    names = [s.stage for s in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"run_stages_ray: stage names must differ (got {names})")
    for s in stages:
        _check_picklable(s)

    recordings = list(recordings)
    order = {r.recording_id: k for k, r in enumerate(recordings)}
    results = [BatchResult(s.stage) for s in stages]
    label = "+".join(names)
    t0 = time.perf_counter()

    if overwrite:
        todo = recordings
    else:
        flags = _done_flags(recordings, stages, check_threads)
        todo = [r for r, done in zip(recordings, flags) if not done]
        for r, done in zip(recordings, flags):
            if done:
                for res in results:
                    res.skipped.append(r.recording_id)

    started = connect(address, local_num_cpus=local_num_cpus) if todo else False
    try:
        with make_progress() as progress:
            task = progress.add_task(f"{label} (ray)", total=len(recordings), status="", visible=show_progress)
            progress.update(task, advance=len(recordings) - len(todo))
            if todo:
                seen = _run_dataset(todo, stages, results, overwrite, max_attempts, progress, task, t0)
                _report_lost(todo, seen, stages, results, overwrite)
    finally:
        if started:
            import ray

            ray.shutdown()

    wall = time.perf_counter() - t0
    for res in results:
        res.done.sort(key=order.__getitem__)
        res.skipped.sort(key=order.__getitem__)
        res.failed.sort(key=lambda row: order.get(row["recording_id"], 0))
        res.wall_s = wall
    return results


def _run_dataset(
    todo: Sequence[Recording],
    stages: Sequence[StageSpec],
    results: list[BatchResult],
    overwrite: bool,
    max_attempts: int,
    progress: Any,
    task: Any,
    t0: float,
) -> set[str]:
    import ray
    from ray.data import ActorPoolStrategy

    cluster = ray.cluster_resources()
    chained = len(stages) > 1
    cwd = os.getcwd()
    run_id = uuid.uuid4().hex
    seen: set[str] = set()
    with _data_context():
        items = [{"recording_id": r.recording_id, "path": os.fsencode(r.path)} for r in todo]  # bytes: any name
        # one recording per block: the unit of scheduling and of retry
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        for i, spec in enumerate(stages):
            spec = resolve_gpus(spec, cluster)
            lo, hi = _pool_bounds(spec, len(todo), cluster, chained)
            # one recording in flight per actor: recordings take seconds to minutes each, so a
            # queue on a busy actor would only leave the others idle at the end of the run
            pool = {"size": lo} if lo == hi else {"min_size": lo, "max_size": hi}
            compute = ActorPoolStrategy(**pool, max_tasks_in_flight_per_actor=1)
            kwargs: dict[str, Any] = {}
            if spec.memory:
                kwargs["memory"] = spec.memory
            ds = ds.map_batches(
                StageActor,
                fn_constructor_kwargs={
                    "spec": spec, "index": i, "overwrite": overwrite,
                    "max_attempts": max_attempts, "driver_cwd": cwd, "run_id": run_id,
                },
                batch_size=None,
                batch_format="pyarrow",
                compute=compute,
                num_cpus=spec.num_cpus,
                num_gpus=spec.num_gpus,
                **kwargs,
            )
        for row in ds.iter_rows():
            rid = row["recording_id"]
            if rid in seen:  # cannot happen with Ray's exactly-once block output; be safe
                continue
            seen.add(rid)
            record(results, rid, [_outcome(row, i) for i in range(len(results))])
            progress.update(task, advance=1, status=progress_status(results, t0))
    return seen


def _outcome(row: dict, i: int) -> Outcome:
    import json

    c_status, c_audio, c_error = _status_columns(i)
    err, steps = row[c_error], row[_timings_column(i)]
    return Outcome(row[c_status], float(row[c_audio] or 0.0), float(row[_seconds_column(i)] or 0.0),
                   None if err is None else json.loads(err), None if steps is None else json.loads(steps))


def _report_lost(todo: Sequence[Recording], seen: set[str], stages: Sequence[StageSpec], results: list[BatchResult],
                 overwrite: bool = False) -> None:
    """Recordings whose block Ray gave up on: an error row in the first stage not done."""
    exc = WorkerLost("the Ray engine lost this recording (its worker failed and was not retried); run again")
    chain = [(s.stage, s.out_root, s.is_done) for s in stages]
    for rec in todo:
        if rec.recording_id not in seen:
            record(results, rec.recording_id, lost_outcomes(rec, chain, exc, overwrite))


class RayEngine(Engine):
    """Stages as actor pools on a Ray cluster (see the module docstring).

    Settings (what ``engines.options.engine_settings`` makes from the command line): address,
    num_cpus, num_gpus, concurrency, memory (one value, or {stage: value} with "*" the rest),
    max_attempts, check_threads, local_num_cpus.
    """

    name = "ray"
    pipelined = True

    def __init__(self, **settings: Any) -> None:
        import_ray()  # one line naming the install command when Ray is missing
        settings.pop("show_progress", None)  # a run argument (older callers passed it here)
        self.settings = settings

    def _run(self, recordings: list[Recording], stages: list[Stage], overwrite: bool,
             show_progress: bool) -> list[BatchResult]:
        specs = [StageSpec(s.name, s.factory(), s.is_done, s.out_root, num_cpus=s.num_cpus, num_gpus=s.num_gpus)
                 for s in stages]
        return run_stages_ray(recordings, specs, overwrite=overwrite, show_progress=show_progress, **self.settings)
