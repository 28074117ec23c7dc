"""The Ray Data engine: one batch stage (or a chain of stages) over a Ray cluster.

How a run goes (``run_batch_ray`` for one stage, ``run_stages_ray`` for a chain):

1. Connect: ``--ray-address`` ``auto`` (the running cluster), ``ray://HOST:10001`` (Ray Client),
   ``HOST:6379``, or ``local`` (start a one-machine cluster for this run and stop it after;
   the default unless RAY_ADDRESS is set). An already initialised Ray (``ray.init`` by the
   caller) is used as it is and left running.
2. Resume: the driver asks every stage's ``is_done`` for every recording (threads; a footer
   read each). Recordings done for every stage are reported as skipped and never reach Ray.
3. The rest become a Ray Dataset, one recording per block, so a retried block is one
   recording. Each stage is a ``map_batches`` over an actor pool (``ActorPoolStrategy``):
   the actor builds the stage worker once (``make_process()``; models load lazily inside,
   once per actor) and keeps it for every recording it is handed. ``num_cpus`` /
   ``num_gpus`` / ``memory`` are reserved per actor and the pool size is set per stage, so a
   CPU stage and a GPU stage scale separately (``StageSpec``).
4. Inside the actor each recording runs exactly as in the local engine: ``is_done`` checked
   again (unless overwrite), the worker writes its outputs atomically (temp file + rename on
   the shared file system) and returns its audio seconds; an exception becomes the same error
   row (``batch.write_error``) and a success clears an old one (``batch.clear_error``).
   Only a small status row (status, audio seconds, wall seconds, error row) travels back to
   the driver, which fills the ``BatchResult`` and the progress bar as rows stream in;
   ``batch.run_batch`` builds the manifest rows from it, as for the local engine.

Fault tolerance: Ray restarts a dead actor and retries its block. Writes are idempotent (same
path, atomic rename), so a retried recording is written again, never twice, and a
recording killed half way leaves no partial file. Each attempt is counted in
``<out_root>/.ray-attempts/<stage>/<recording_id>.n`` (with the run's id); a retry is
processed again even if the dead worker had finished writing (so it is reported as done,
with its audio seconds), and a recording whose worker dies
``max_attempts`` times (a decoder crash, the OOM killer) gets an error row of type
``WorkerLost`` instead of another retry, so one poison file cannot stall the batch.

Requirements on a multi-node cluster: every node sees the inputs and the work/out
directories at the same paths (a shared file system); relative paths resolve against the
driver's working directory (the actors ``chdir`` there when it exists); ``hilbert-cli`` is
installed on every node (same image). ``make_process`` and ``is_done`` must be picklable:
``functools.partial`` of module-level classes/functions (docs/ARCHITECTURE.md, "Engines").

Chaining (``hilbert score``: prepare on CPU actors, then embed + model on GPU actors)::

    run_stages_ray(recordings, [
        StageSpec("prepare", partial(PrepareWorker, popts, work), partial(prep_done, ...), work,
                  num_cpus=1),
        StageSpec("score", partial(ScoreWorker, sopts, work), partial(score_done, ...), out,
                  num_cpus=1, num_gpus=1),
    ], address="auto")

A recording flows from one pool to the next without returning to the driver; one that fails
in a stage gets its error row there and is not handed to the later stages (status
``blocked``, counted in none of their lists).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import pyarrow as pa

from ..batch import BatchResult, Recording, as_text, clear_error, output_path, record_failure
from ..parquet_io import atomic_write
from ..console import console, make_progress
from ..errors import ConfigError, one_line
from . import RAY_INSTALL_HINT

#: a per-actor setting: one value for every stage, or {stage: value} with "*" as the default
PerStage = Union[float, int, str, tuple, Mapping[str, Any], None]

LOCAL_ADDRESSES = frozenset({"local", "none", ""})
ATTEMPTS_DIR = ".ray-attempts"
DEFAULT_MAX_ATTEMPTS = 3

STATUS_DONE, STATUS_SKIPPED, STATUS_FAILED, STATUS_BLOCKED = "done", "skipped", "failed", "blocked"


class WorkerLost(RuntimeError):
    """The Ray worker process died (crash, OOM kill, lost node) while handling a recording."""


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


# ----------------------------------------------------------------------------- connecting


def import_ray():
    """The ``ray`` module, or a one-line ConfigError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


def resolve_address(address: str | None) -> str:
    """``--ray-address`` as given, else RAY_ADDRESS, else ``local``."""
    addr = address if address is not None else os.environ.get("RAY_ADDRESS", "")
    addr = addr.strip()
    return "local" if addr.lower() in LOCAL_ADDRESSES else addr


def init_local(num_cpus: int | None = None, **init_kwargs: Any) -> None:
    """Start a one-machine Ray cluster that talks over loopback only (127.0.0.1).

    Ray otherwise advertises the machine's network address even for a one-node cluster;
    here its processes bind and connect on loopback, with no dashboard and no usage stats.
    """
    ray = import_ray()
    from ray._private import ray_constants

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    saved_env = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    saved_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)  # Ray-internal; 2.60 has it
    # "no multi-node cluster": Ray then keeps the node address on loopback (driver + children)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    # token authentication stays on (Ray's default); only its start-up notice is left out
    quiet = _log_levels({"ray._private.authentication.authentication_token_setup": logging.ERROR})
    try:
        init_kwargs.setdefault("include_dashboard", False)
        init_kwargs.setdefault("logging_level", logging.WARNING)
        with quiet:
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **init_kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved_env


def check_reachable(addr: str, timeout_s: float = 10.0) -> None:
    """One line at once when nothing listens at a cluster address (Ray itself keeps retrying
    for minutes): ``auto`` is resolved to the running cluster's address first."""
    import socket

    target = addr[len("ray://"):] if addr.startswith("ray://") else addr
    if target == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die

            target = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as exc:
            raise ConfigError(f"--ray-address auto: {one_line(exc)}") from None
        except Exception:  # Ray's internals moved: let ray.init decide
            return
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"--ray-address {addr}: no Ray cluster answers at {host}:{port} ({exc.strerror or one_line(exc)})"
        ) from None


def connect(address: str | None = None, *, local_num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; True when this call started it (the caller shuts it down).

    ``local`` starts a single-machine cluster on loopback (``init_local``).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    addr = resolve_address(address)
    if addr != "local":
        check_reachable(addr)
    try:
        if addr == "local":
            init_local(local_num_cpus)
        else:
            ray.init(address=addr, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, grpc errors...
        raise ConfigError(f"--ray-address {addr}: cannot start or reach a Ray cluster ({one_line(exc)})") from None
    return True


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
        try:
            self.process = spec.make_process()
        except Exception as exc:  # becomes each recording's error row, as a lazy load would
            self.init_error = exc

    def __call__(self, batch: pa.Table) -> pa.Table:
        import json

        statuses, audio, errors, seconds = [], [], [], []
        for row in batch.to_pylist():
            t0 = time.perf_counter()
            status, audio_s, err = self._one(row)
            statuses.append(status)
            audio.append(audio_s)
            errors.append(None if err is None else json.dumps(err))
            seconds.append(0.0 if status in (STATUS_SKIPPED, STATUS_BLOCKED) else time.perf_counter() - t0)
        c_status, c_audio, c_error = _status_columns(self.index)
        batch = batch.append_column(c_status, pa.array(statuses, pa.string()))
        batch = batch.append_column(c_audio, pa.array(audio, pa.float64()))
        batch = batch.append_column(_seconds_column(self.index), pa.array(seconds, pa.float64()))
        return batch.append_column(c_error, pa.array(errors, pa.string()))

    def _one(self, row: Mapping[str, Any]) -> tuple[str, float, dict | None]:
        for j in range(self.index):
            if row.get(_status_columns(j)[0]) in (STATUS_FAILED, STATUS_BLOCKED):
                return STATUS_BLOCKED, 0.0, None
        spec = self.spec
        rec = Recording(row["recording_id"], Path(os.fsdecode(row["path"])))
        attempts = _attempts_path(spec.out_root, spec.stage, rec.recording_id)
        try:
            # a retry after this run's worker died is processed again (idempotent rewrite),
            # even when the dead worker had already written it, so it counts as done
            before = _read_attempts(attempts, self.run_id) if self.max_attempts > 0 else 0
            if before == 0 and not self.overwrite and spec.is_done(rec):
                return STATUS_SKIPPED, 0.0, None
            if self.max_attempts > 0:
                n = before + 1
                _write_attempts(attempts, self.run_id, n)
                if n > self.max_attempts:
                    raise WorkerLost(
                        f"the Ray worker died {n - 1} times while processing this recording "
                        "(a crash in native code or the out-of-memory killer?)"
                    )
            if self.init_error is not None:
                raise self.init_error
            audio_s = self.process(rec)
        except Exception as exc:  # one bad recording never stops the batch
            err = record_failure(spec.out_root, spec.stage, rec, exc)
            _clear_attempts(attempts)
            return STATUS_FAILED, 0.0, err
        clear_error(spec.out_root, spec.stage, rec.recording_id)
        _clear_attempts(attempts)
        return STATUS_DONE, float(audio_s or 0.0), None


# ----------------------------------------------------------------------------- the driver


@contextlib.contextmanager
def _log_levels(levels: Mapping[str, int]) -> Iterator[None]:
    loggers = {name: logging.getLogger(name) for name in levels}
    saved = {name: log.level for name, log in loggers.items()}
    for name, log in loggers.items():
        log.setLevel(levels[name])
    try:
        yield
    finally:
        for name, log in loggers.items():
            log.setLevel(saved[name])


@contextlib.contextmanager
def _data_context() -> Iterator[Any]:
    """Ray Data settings for a run: our own progress bar, failed blocks reported not fatal."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.max_errored_blocks)
    ctx.enable_progress_bars = False
    ctx.max_errored_blocks = -1  # a block lost for good is reported as an error row, below
    # Ray Data's INFO lines, and its notice that its own bars are off (ours is on)
    with _log_levels({"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}):
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
                _report_lost(todo, seen, stages, results)
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
    import json

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
        audio_total = 0.0
        for row in ds.iter_rows():
            rid = row["recording_id"]
            if rid in seen:  # cannot happen with Ray's exactly-once block output; be safe
                continue
            seen.add(rid)
            for i, res in enumerate(results):
                c_status, c_audio, c_error = _status_columns(i)
                status = row[c_status]
                if status in (STATUS_DONE, STATUS_FAILED):
                    res.seconds[rid] = float(row[_seconds_column(i)] or 0.0)
                if status == STATUS_DONE:
                    res.done.append(rid)
                    res.audio_s += float(row[c_audio] or 0.0)
                elif status == STATUS_SKIPPED:
                    res.skipped.append(rid)
                elif status == STATUS_FAILED:
                    err = json.loads(row[c_error])
                    res.failed.append(err)
                    console.print(f"[red]failed[/] {rid}: {err['message']}", soft_wrap=True)
            audio_total = max(res.audio_s for res in results)
            elapsed = time.perf_counter() - t0
            rt = f"{audio_total / elapsed:.1f}x RT" if audio_total and elapsed > 0 else ""
            n_failed = sum(len(res.failed) for res in results)
            progress.update(task, advance=1, status=f"{audio_total / 3600:.2f} h audio {rt} {n_failed} failed")
    return seen


def _report_lost(todo: Sequence[Recording], seen: set[str], stages: Sequence[StageSpec], results: list[BatchResult]) -> None:
    """Recordings whose block Ray gave up on: an error row in the first stage not done."""
    for rec in todo:
        if rec.recording_id in seen:
            continue
        for spec, res in zip(stages, results):
            try:
                done = spec.is_done(rec)
            except Exception:
                done = False
            if done:
                res.skipped.append(rec.recording_id)
                continue
            exc = WorkerLost("the Ray engine lost this recording (its worker failed and was not retried); run again")
            row = record_failure(spec.out_root, spec.stage, rec, exc)
            res.failed.append(row)
            console.print(f"[red]failed[/] {as_text(rec.recording_id)}: {row['message']}", soft_wrap=True)
            break


def run_batch_ray(
    recordings: Sequence[Recording],
    *,
    stage: str,
    out_root: Path,
    make_process: Callable[[], Callable[[Recording], float | None]],
    is_done: Callable[[Recording], bool],
    overwrite: bool = False,
    **engine_options: Any,
) -> BatchResult:
    """``batch.run_batch(..., engine="ray")``: one stage on an actor pool (see the module doc).

    engine_options: address, num_cpus, num_gpus, concurrency, memory, max_attempts,
    show_progress, check_threads, local_num_cpus (as ``engines.options.engine_settings`` makes).
    """
    spec = StageSpec(stage, make_process, is_done, Path(out_root))
    return run_stages_ray(recordings, [spec], overwrite=overwrite, **engine_options)[0]
