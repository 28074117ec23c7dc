"""Connecting the Ray engine to a cluster: ``--ray-address`` ``auto`` (the running cluster),
``ray://HOST:10001`` (Ray Client), ``HOST:6379``, or ``local`` (a one-machine cluster on
loopback for this run, stopped after it; the default unless RAY_ADDRESS is set). An already
initialised Ray (``ray.init`` by the caller) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator, Mapping

from ..errors import ConfigError, one_line
from . import RAY_INSTALL_HINT

LOCAL_ADDRESSES = frozenset({"local", "none", ""})


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
    quiet = log_levels({"ray._private.authentication.authentication_token_setup": logging.ERROR})
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



@contextlib.contextmanager
def log_levels(levels: Mapping[str, int]) -> Iterator[None]:
    loggers = {name: logging.getLogger(name) for name in levels}
    saved = {name: log.level for name, log in loggers.items()}
    for name, log in loggers.items():
        log.setLevel(levels[name])
    try:
        yield
    finally:
        for name, log in loggers.items():
            log.setLevel(saved[name])

