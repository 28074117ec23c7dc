"""Choosing an engine and running stages with it: the one door the pipelines go through.

`get_engine("local" | "ray" | an Engine, settings, jobs=N)` gives the Engine object (a name is
looked up here, never branched on elsewhere); `run_batch` runs one stage given as plain
callables, for callers that have no Stage class (tests, export, benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from .. import manifest
from ..batch import BatchResult, Recording
from ..errors import ConfigError
from ..stages import FunctionStage
from . import ENGINES
from .base import Engine
from .local import LocalEngine


def get_engine(engine: "str | Engine | None" = "local", settings: Mapping[str, Any] | None = None, *,
               jobs: int = 1) -> Engine:
    """The engine an `--engine` value names (settings: engines.options.engine_settings), or `engine` itself."""
    if isinstance(engine, Engine):
        return engine
    name = (engine or "local").strip().lower()
    if name == "local":
        return LocalEngine(jobs=jobs)
    if name == "ray":
        if jobs != 1:
            raise ConfigError("--jobs applies to --engine local (the Ray engine sizes its pools itself)")
        from .ray import RayEngine

        return RayEngine(**dict(settings or {}))
    raise ConfigError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")


def run_batch(
    recordings: list[Recording],
    *,
    stage: str,
    out_root: Path,
    is_done: Callable[[Recording], bool],
    process: Callable[[Recording], float | None] | None = None,
    make_process: Callable[[], Callable[[Recording], float | None]] | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    engine: "str | Engine" = "local",
    engine_options: Mapping[str, Any] | None = None,
    describe: manifest.Describe | None = None,
    config_hash: str | None = None,
    jobs: int = 1,
) -> BatchResult:
    """Run one stage given as callables on each recording not yet done; failures become error rows.

    `process(rec)` writes its recording's outputs atomically and returns the audio seconds it
    handled; `make_process` is a picklable factory of it, so other engines (worker processes,
    Ray actors) build the callable once per worker. `describe(rec)` reads a recording's facts
    from its output, for the manifest rows the result carries (`BatchResult.rows`).
    """
    st = FunctionStage(stage, Path(out_root), is_done, process=process, make_process=make_process,
                       describe=describe, config_hash=config_hash)
    eng = get_engine(engine, engine_options, jobs=jobs)
    return eng.run_stage(recordings, st, overwrite=overwrite, show_progress=show_progress)
