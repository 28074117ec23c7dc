"""The local engine: the stages run on this machine, one recording after another, or
`jobs` recordings at once in worker processes (``--jobs N``).

With jobs > 1 each worker process is started once (spawn: no state forked from a parent whose
thread pools already run), unpickles the stages (options and paths only), limits itself to its
share of the CPU cores (``Stage.with_threads``: torch threads, CTranslate2 threads and ASR
workers; OMP/MKL pools), loads the models on first use and keeps them for every recording it
is handed. So N jobs never ask for more threads than the cores this process may use, and memory
is bounded by N workers each holding one recording. Outputs, error rows and resume are exactly
those of one job: each worker runs the same `attempt` as the in-process path.

A worker that dies (kill -9, the out-of-memory killer) breaks the pool: the recordings that
were in flight beside it are run again in a fresh pool, each with nothing beside it, so the one
that kills its worker alone gets a `WorkerLost` error row and the batch goes on.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from typing import Callable

from ..batch import BatchResult, Recording
from ..console import make_progress
from ..devices import usable_cores
from ..errors import ConfigError, one_line
from ..stages import Stage
from .base import Engine, Outcome, WorkerLost, limit_threads, lost_outcomes, progress_status, record, run_chain

#: the error row of a recording whose worker process died under it
DIED = "worker process died (killed or out of memory)"


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Each job's share of the usable cores (at least one)."""
    return max(1, (cores or usable_cores()) // max(1, jobs))


class LocalEngine(Engine):
    """The stages in this process (jobs=1), or in `jobs` worker processes."""

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        if int(jobs) < 1:
            raise ConfigError(f"--jobs {jobs}: must be >= 1")
        self.jobs = int(jobs)

    def _run(self, recordings: list[Recording], stages: list[Stage], overwrite: bool,
             show_progress: bool) -> list[BatchResult]:
        results = [BatchResult(s.name) for s in stages]
        t0 = time.perf_counter()
        label = "+".join(s.name for s in stages)
        with make_progress() as progress:
            task = progress.add_task(label, total=len(recordings), status="", visible=show_progress)

            def finish(rec: Recording, outcomes: list[Outcome]) -> None:
                record(results, rec.recording_id, outcomes)
                progress.update(task, advance=1, status=progress_status(results, t0))

            if self.jobs == 1 or len(recordings) <= 1:
                for rec in recordings:
                    finish(rec, run_chain(rec, stages, overwrite))
            else:
                self._run_pool(recordings, stages, overwrite, finish)
                order = {r.recording_id: k for k, r in enumerate(recordings)}
                for res in results:  # the order of one job, whatever order the workers finished in
                    res.done.sort(key=order.__getitem__)
                    res.skipped.sort(key=order.__getitem__)
                    res.failed.sort(key=lambda row: order.get(row["recording_id"], 0))
        wall = time.perf_counter() - t0
        for res in results:
            res.wall_s = wall
        return results

    def _run_pool(self, recordings: list[Recording], stages: list[Stage], overwrite: bool,
                  finish: Callable[[Recording, list[Outcome]], None]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            blob = pickle.dumps(list(stages))
        except Exception as exc:
            raise ConfigError(f"--jobs {self.jobs}: the {stages[0].name} stage cannot be sent to worker "
                              f"processes ({one_line(exc)}); run with --jobs 1") from None
        jobs = min(self.jobs, len(recordings))
        ctx = multiprocessing.get_context("spawn")
        todo: deque[Recording] = deque(recordings)
        alone: deque[Recording] = deque()  # in flight when a worker died: each runs again with none beside it
        while todo or alone:
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(blob, threads_per_job(jobs))) as pool:
                _check_started(pool, jobs)
                lost = _feed(pool, todo, alone, jobs, overwrite, finish)
            if len(lost) == 1:  # it was alone in flight: it killed its worker
                rec = lost[0]
                chain = [(s.name, s.out_root, s.is_done) for s in stages]
                finish(rec, lost_outcomes(rec, chain, WorkerLost(DIED), overwrite))
            else:
                alone.extend(lost)


def _check_started(pool, jobs: int) -> None:
    """A pool whose workers cannot start (their initializer fails; a script run with jobs > 1 and
    no `if __name__ == "__main__":` guard, whose top level each spawned worker runs again) is one
    ConfigError, not a "worker died" row for every recording."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    try:
        pool.submit(os.getpid).result()
    except BrokenProcessPool:
        raise ConfigError(f"--jobs {jobs}: the worker processes could not start (their error is above; a Python "
                          "script that runs hilbert with jobs > 1 needs `if __name__ == '__main__':`); "
                          "run with --jobs 1") from None


def _feed(pool, todo: deque, alone: deque, jobs: int, overwrite: bool,
          finish: Callable[[Recording, list[Outcome]], None]) -> list[Recording]:
    """Hand recordings to the pool (at most `jobs` in flight; one from `alone` with nothing beside
    it) until both queues are empty: [] then; or, when a worker died, the recordings that were in
    flight and did not finish (the pool is broken: the caller starts a fresh one)."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    running: dict = {}
    solo: set = set()  # the future of a recording from `alone`: nothing runs beside it

    def top_up() -> None:
        while not solo.intersection(running) and \
                ((alone and not running) or (not alone and todo and len(running) < jobs)):
            queue = alone or todo
            rec = queue.popleft()
            try:
                fut = pool.submit(_work, rec, overwrite)
            except BrokenProcessPool:  # a worker died since the last wait: what is in flight says which
                queue.appendleft(rec)
                return
            running[fut] = rec
            if queue is alone:
                solo.add(fut)

    top_up()
    while running:
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        broken = False
        for fut in finished:
            rec = running.pop(fut)
            try:
                outcomes = fut.result()  # DiskFull etc. re-raised here
            except BrokenProcessPool:
                running[fut] = rec
                broken = True
                continue
            finish(rec, outcomes)
        if broken:
            wait(running)  # the pool fails every future still in flight
            lost = []
            for fut, rec in running.items():
                try:
                    finish(rec, fut.result())  # finished before the break
                except BrokenProcessPool:
                    lost.append(rec)
            return lost
        top_up()
    return []


# ----------------------------------------------------------------------------- worker processes

_STAGES: list[Stage] = []


def _init_worker(blob: bytes, threads: int) -> None:
    """Once per worker process: its thread budget, then its stages (no model loaded yet)."""
    limit_threads(threads)
    _STAGES[:] = [s.with_threads(threads) for s in pickle.loads(blob)]


def _work(rec: Recording, overwrite: bool):
    return run_chain(rec, _STAGES, overwrite)
