"""One per-recording stage, as every engine runs it (docs/ARCHITECTURE.md, "Engines").

A stage knows its key (`name`: where its error rows and manifest go), where it writes
(`outputs`), whether a recording is done (`is_done`: its last output exists with the stage's
config hash), how to process one recording (`process`, no writes) and how to write the result
(`write`, atomic, returning the audio seconds handled). Resume, error rows and manifest rows
are the engine's (hilbert_cli.engines.base), written once for every stage.

A stage is small and picklable: options and paths only. Its models are `lazy` attributes,
loaded on first use and left out when the stage is pickled, so an engine ships the stage to
each worker process or Ray actor, which loads the models once and keeps them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Mapping

from .batch import Recording, is_complete

Process = Callable[[Recording], "float | None"]


class lazy:
    """A model (or other costly attribute) built by `load(self)` on first use and kept in
    `_<name>` (None: not built yet, so `release` and `__getstate__` just reset it)."""

    def __init__(self, load: Callable[[Any], Any]) -> None:
        self.load = load
        self.slot = "_" + load.__name__
        functools.update_wrapper(self, load)  # type: ignore[arg-type]

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name
        if self.slot not in owner.__dict__:
            setattr(owner, self.slot, None)  # reads as None until built

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__.get(self.slot)
        if value is None:
            value = obj.__dict__[self.slot] = self.load(obj)
        return value


class Lazy:
    """Base of the per-stage workers (Preparer, Embedder, ScoreWorker): a lazy `device` from
    `options.device`, and pickling without the loaded models."""

    options: Any

    @lazy
    def device(self) -> str:
        from .devices import pick_device

        return pick_device(self.options.device)

    @classmethod
    def _lazy_slots(cls) -> set[str]:
        return {v.slot for k in dir(cls) if isinstance(v := getattr(cls, k, None), lazy)}

    def loaded(self, name: str) -> Any:
        """The lazy attribute `name` if it is built, else None (never builds it)."""
        return self.__dict__.get("_" + name)

    def __getstate__(self) -> dict:
        slots = self._lazy_slots()
        return {k: (None if k in slots else v) for k, v in self.__dict__.items()}


class Stage(Lazy):
    """The interface every engine runs (see the module docstring). Subclasses set `name`,
    `out_root` and `config_hash`, and define `outputs`, `process` and `write`."""

    name: str = "stage"
    #: the work directory the stage's errors/<name>/ rows (and, for most stages, outputs) go under
    out_root: Path
    config_hash: str | None = None
    #: per Ray actor: CPUs and GPUs ("auto": 1 when the cluster has one) the stage wants
    num_cpus: float = 1.0
    num_gpus: float | str = 0.0

    def outputs(self, rec: Recording) -> dict[str, Path]:
        """The files the stage writes for `rec`, the one written last (the done marker) last."""
        raise NotImplementedError

    def is_done(self, rec: Recording) -> bool:
        """Resume: the done marker exists with this stage's config hash."""
        return is_complete(list(self.outputs(rec).values())[-1], str(self.config_hash))

    def process(self, rec: Recording) -> Any:
        """Compute `rec`'s outputs (no writes)."""
        raise NotImplementedError

    def write(self, rec: Recording, result: Any) -> float:
        """Write `result` atomically (the done marker last); return the audio seconds handled."""
        raise NotImplementedError

    def __call__(self, rec: Recording) -> float | None:
        return self.write(rec, self.process(rec))

    def describe(self, rec: Recording) -> Mapping[str, Any] | None:
        """The manifest's facts of a recording, read from its outputs (hilbert_cli.manifest)."""
        return None

    def with_threads(self, threads: int) -> "Stage":
        """This stage limited to `threads` CPU threads (its worker's share: --jobs, a Ray actor's num_cpus)."""
        return self

    def take_timings(self) -> dict[str, float]:
        """Seconds per step spent since the last call (and forget them): the engines carry them
        back with each recording's outcome and sum them (BatchResult.timings). None timed here."""
        return {}

    def factory(self) -> Callable[[], Process]:
        """A picklable zero-argument callable that gives the per-worker callable (Ray actors
        call it once): the stage itself, unpickled in the worker with no model loaded."""
        return functools.partial(_itself, self)


def _itself(stage: Stage) -> Stage:
    return stage


class FunctionStage(Stage):
    """A stage made of plain callables: `process(rec) -> audio seconds` (writes itself), or a
    picklable factory `make_process()` building one per worker, and `is_done(rec)`."""

    def __init__(self, name: str, out_root: Path, is_done: Callable[[Recording], bool], *,
                 process: Process | None = None, make_process: Callable[[], Process] | None = None,
                 describe: Callable[[Recording], Any] | None = None, config_hash: str | None = None) -> None:
        if (process is None) == (make_process is None):
            raise TypeError("a FunctionStage needs exactly one of process= or make_process=")
        self.name, self.out_root, self.config_hash = name, Path(out_root), config_hash
        self._is_done, self._describe = is_done, describe
        self.make_process = make_process
        self._process = process

    @lazy
    def process_fn(self) -> Process:
        return self._process or self.make_process()  # type: ignore[misc]

    def is_done(self, rec: Recording) -> bool:
        return bool(self._is_done(rec))

    def __call__(self, rec: Recording) -> float | None:
        return self.process_fn(rec)

    def describe(self, rec: Recording) -> Any:
        return self._describe(rec) if self._describe is not None else None

    def factory(self) -> Callable[[], Process]:
        if self.make_process is None:
            from .errors import ConfigError

            raise ConfigError(f"{self.name}: this engine needs a picklable make_process factory")
        return self.make_process

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if self.make_process is not None:
            state["_process"] = None  # rebuilt from the factory in the worker
        return state
