"""Typer options for choosing the engine (engines/runner.py: get_engine), shared by `hilbert prepare`, `embed` and `score`.

A command adds them as annotated parameters and turns them into run_batch arguments::

    from ..engines.options import (EngineOpt, RayAddressOpt, RayConcurrencyOpt, RayNumCpusOpt,
                                   RayNumGpusOpt, engine_settings)

    def prepare(..., engine: EngineOpt = "local", jobs: JobsOpt = 1, ray_address: RayAddressOpt = None,
                ray_num_cpus: RayNumCpusOpt = None, ray_num_gpus: RayNumGpusOpt = None,
                ray_concurrency: RayConcurrencyOpt = None):
        engine, engine_options = engine_settings(engine, ray_address, ray_num_cpus,
                                                 ray_num_gpus, ray_concurrency)
        ... prepare_recordings(..., engine=engine, engine_options=engine_options, jobs=jobs)

Per-actor values take one number for every stage or ``STAGE=VALUE`` pairs, e.g.
``--ray-num-gpus score=1`` or ``--ray-concurrency prepare=6,score=2`` (``*=`` sets the rest).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import ConfigError
from . import ENGINES

PANEL = "Engine"

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        envvar="HILBERT_ENGINE",
        metavar="local|ray",
        help="Where the batch runs: local (this process) or ray (a Ray cluster; needs pip install 'hilbert-cli\\[ray]').",
        rich_help_panel=PANEL,
    ),
]
JobsOpt = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="With --engine local: recordings processed at once, each in its own worker process with its share "
        "of the CPU cores (threads split so jobs x threads never exceeds them). Memory grows with N.",
        rich_help_panel=PANEL,
    ),
]
RayAddressOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray-address",
        metavar="local|auto|ray://HOST:PORT|HOST:PORT",
        help="With --engine ray: local starts a one-machine cluster for this run (the default unless "
        "RAY_ADDRESS is set); auto joins the running cluster; ray://HOST:10001 connects with Ray Client.",
        rich_help_panel=PANEL,
    ),
]
RayNumCpusOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray-num-cpus",
        metavar="N|STAGE=N,...",
        help="CPUs reserved per Ray actor (default 1), for every stage or per stage.",
        rich_help_panel=PANEL,
    ),
]
RayNumGpusOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray-num-gpus",
        metavar="N|auto|STAGE=N,...",
        help="GPUs reserved per Ray actor, for every stage or per stage: a number (fractions share a GPU) "
        "or auto (1 when the cluster has GPUs). Default: 0 for CPU stages, auto for model stages.",
        rich_help_panel=PANEL,
    ),
]
RayConcurrencyOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray-concurrency",
        metavar="N|MIN-MAX|STAGE=...,",
        help="Ray actors per stage: N (fixed pool) or MIN-MAX (autoscaling); default: as many as the "
        "cluster's CPUs/GPUs allow.",
        rich_help_panel=PANEL,
    ),
]


def _number(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} '{text}': expected a number") from None
    if value < 0:
        raise ConfigError(f"{flag} '{text}': must be >= 0")
    return value


def _gpus(flag: str, text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else _number(flag, text)


def _concurrency(flag: str, text: str) -> int | tuple[int, int]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            if not 1 <= lo <= hi:
                raise ValueError
            return (lo, hi)
        n = int(text)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise ConfigError(f"{flag} '{text}': expected N or MIN-MAX with 1 <= MIN <= MAX, e.g. 4 or 1-8") from None


def parse_per_stage(flag: str, text: str | None, parse_value) -> Any:
    """'2' -> 2.0; 'prepare=2,score=1' -> {'prepare': 2.0, 'score': 1.0}; None -> None."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if "=" not in text:
        return parse_value(flag, text)
    out: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        stage, sep, value = part.partition("=")
        if not sep or not stage.strip() or not value.strip():
            raise ConfigError(f"{flag} '{text}': expected N or STAGE=N pairs separated by commas")
        out[stage.strip()] = parse_value(flag, value.strip())
    return out


def engine_settings(
    engine: str = "local",
    ray_address: str | None = None,
    ray_num_cpus: str | None = None,
    ray_num_gpus: str | None = None,
    ray_concurrency: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(engine, engine_options) for engines.runner.get_engine from the command-line values, validated.

    With --engine ray, checks that Ray is importable (one line naming the install command).
    """
    engine = (engine or "local").strip().lower()
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    given = {
        "--ray-address": ray_address, "--ray-num-cpus": ray_num_cpus,
        "--ray-num-gpus": ray_num_gpus, "--ray-concurrency": ray_concurrency,
    }
    if engine == "local":
        extra = [flag for flag, v in given.items() if v is not None]
        if extra:
            raise ConfigError(f"{extra[0]} only applies with --engine ray")
        return "local", {}
    from .ray_cluster import import_ray

    import_ray()
    options: dict[str, Any] = {}
    if ray_address is not None:
        options["address"] = ray_address
    for key, flag, value, parse in (
        ("num_cpus", "--ray-num-cpus", ray_num_cpus, _number),
        ("num_gpus", "--ray-num-gpus", ray_num_gpus, _gpus),
        ("concurrency", "--ray-concurrency", ray_concurrency, _concurrency),
    ):
        parsed = parse_per_stage(flag, value, parse)
        if parsed is not None:
            options[key] = parsed
    return "ray", options
