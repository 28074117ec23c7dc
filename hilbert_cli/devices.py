"""Device choice: GPU when present, CPU always works."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigError


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # cuda | mps | cpu
    name: str
    memory_gb: float | None = None


def pick_device(requested: str = "auto") -> str:
    """'auto' -> cuda, then mps, then cpu; an explicit device that is not there is an error."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {requested}: CUDA is not available on this machine (use --device cpu or auto)")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: MPS is not available on this machine")
    if requested.split(":")[0] not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps")
    return requested


def describe_device(device: str | None = None) -> DeviceInfo:
    import torch

    device = device or pick_device("auto")
    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(idx)
        return DeviceInfo("cuda", props.name, props.total_memory / 2**30)
    if device == "mps":
        return DeviceInfo("mps", "Apple MPS")
    import os

    return DeviceInfo("cpu", f"CPU ({os.cpu_count()} threads, torch uses {torch.get_num_threads()})")


def autocast_dtype(device: str):
    """bf16 where the GPU supports it, else fp16 on CUDA; None (no autocast) on CPU/MPS."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def import_silero_vad():
    """Import silero_vad without its side effect: its model module calls
    torch.set_num_threads(1) at import, which would halve every later CPU stage."""
    import torch

    n = torch.get_num_threads()
    import silero_vad

    torch.set_num_threads(n)
    return silero_vad
