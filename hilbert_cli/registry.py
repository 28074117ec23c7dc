"""Model registry: aliases -> sources, and where each model would load from.

Resolution order (docs/ARCHITECTURE.md, "Models and trust"): an explicit local path, the models directory
($HILBERT_MODELS_DIR, default ./models), the Hugging Face cache, then the hub - never the
hub when offline (HF_HUB_OFFLINE=1, HILBERT_OFFLINE=1 or --offline). Stages always load the
resolved *local directory*, so no library gets a hub id it could try to contact.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from .errors import ConfigError, ModelUnavailable

Kind = Literal[
    "audio_encoder", "text_encoder", "audio_text_encoder", "asr", "diarization",
    "speaker_encoder", "vad", "emotion",
]
Where = Literal["path", "models_dir", "hf_cache", "hub", "package", "builtin", "missing"]

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry (models/registry.toml)."""

    alias: str
    kind: Kind
    source: Literal["hf", "package", "builtin"]
    arch: str
    repo: str | None = None
    revision: str | None = None
    dim: int | None = None
    package: str | None = None
    locator: str | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def pull_hint(self) -> str:
        if self.source == "package":
            if self.extra.get("pip_hint"):
                return str(self.extra["pip_hint"])
            return f"pip install 'hilbert-cli[{self.extra.get('pip_extra', 'offline')}]' (see scripts/setup.sh)"
        return f"hilbert models pull {self.alias}"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model loads from. `path` is None only for builtin models."""

    spec: ModelSpec
    path: Path | None
    where: Where
    revision: str | None = None  # the commit actually resolved, when known

    def provenance(self) -> dict:
        """What goes into Parquet metadata and model configs."""
        return {
            "alias": self.spec.alias,
            "repo": self.spec.repo,
            "revision": self.revision or self.spec.revision,
            "source": self.where,
            "arch": self.spec.arch,
            "dim": self.spec.dim,
        }


def is_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HILBERT_OFFLINE"))


def set_offline() -> None:
    """Make this process and every library in it offline (hub never contacted)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HILBERT_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:  # huggingface_hub reads the variable at import time
        import huggingface_hub.constants as hc

        hc.HF_HUB_OFFLINE = True
    except Exception:  # pragma: no cover - hub not importable
        pass


def models_dir() -> Path:
    return Path(os.environ.get("HILBERT_MODELS_DIR", "models")).expanduser()


def _registry_file() -> Path:
    env = os.environ.get("HILBERT_REGISTRY")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "data" / "registry.toml", here.parent / "models" / "registry.toml"]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"model registry not found (looked at {', '.join(map(str, candidates))})")


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, ModelSpec]:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    known = set(ModelSpec.__dataclass_fields__) - {"alias", "extra"}
    specs = {}
    for alias, entry in raw.get("models", {}).items():
        main = {k: v for k, v in entry.items() if k in known}
        extra = {k: v for k, v in entry.items() if k not in known}
        try:
            specs[alias] = ModelSpec(alias=alias, extra=extra, **main)
        except TypeError as exc:
            raise ConfigError(f"{path}: models.{alias}: {exc}") from exc
    return specs


def registry() -> dict[str, ModelSpec]:
    return _load(str(_registry_file()))


def get_spec(alias: str) -> ModelSpec:
    specs = registry()
    if alias not in specs:
        raise ModelUnavailable(
            f"unknown model '{alias}': not a registry alias nor an existing path "
            f"(see `hilbert models list`)"
        )
    return specs[alias]


def package_dir(spec: ModelSpec) -> Path:
    """Where a package-shipped model's files are, from the installed package only (never a path
    of the alias's name): ModelUnavailable with the install hint when it is not installed."""
    if spec.extra.get("parts"):  # split over several packages: assembled once (model_parts.py)
        from .model_parts import assembled_dir

        return assembled_dir(spec.alias, spec.extra, spec.pull_hint)
    if spec.locator == "dir:":  # the package's folder, without running its __init__
        found = importlib.util.find_spec(spec.package)
        if found is not None and found.submodule_search_locations:
            return Path(list(found.submodule_search_locations)[0])
        raise ModelUnavailable(f"model '{spec.alias}' ships in the Python package '{spec.package}', which is not "
                               f"installed: {spec.pull_hint}")
    try:
        mod = importlib.import_module(spec.package)
    except ImportError as exc:
        raise ModelUnavailable(
            f"model '{spec.alias}' ships in the Python package '{spec.package}', which is not "
            f"installed: {spec.pull_hint}"
        ) from exc
    obj = getattr(mod, spec.locator or "__file__")
    value = obj() if callable(obj) else obj
    p = Path(value)
    return p.parent if p.is_file() else p


def hf_cache_dir() -> Path:
    """The HF hub cache, read from the environment at call time (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def _hf_cache_path(spec: ModelSpec) -> tuple[Path, str] | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        p = Path(
            snapshot_download(
                spec.repo, revision=spec.revision, local_files_only=True, cache_dir=hf_cache_dir()
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    return p, p.name


def _looked(spec: ModelSpec) -> str:
    return f"{models_dir() / spec.alias} and the HF cache ({hf_cache_dir()})"


def locate(name: str) -> ResolvedModel:
    """Where `name` (an alias or a path) would load from, without downloading anything."""
    p = Path(name).expanduser()
    if p.exists():
        spec = ModelSpec(alias=str(name), kind="audio_encoder", source="hf", arch="local")
        # an explicit path: the spec of a registry alias with that directory name, if any
        return ResolvedModel(spec=registry().get(p.name, spec), path=p.resolve(), where="path")
    spec = get_spec(name)
    if spec.source == "builtin":
        return ResolvedModel(spec, None, "builtin")
    if spec.source == "package":
        try:
            return ResolvedModel(spec, package_dir(spec), "package")
        except ModelUnavailable:
            return ResolvedModel(spec, None, "missing")
    local = models_dir() / spec.alias
    if local.is_dir() and any(local.iterdir()):
        return ResolvedModel(spec, local.resolve(), "models_dir")
    cached = _hf_cache_path(spec)
    if cached:
        return ResolvedModel(spec, cached[0], "hf_cache", revision=cached[1])
    return ResolvedModel(spec, None, "hub" if not is_offline() else "missing")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _trusted_roots() -> list[Path]:
    """Where the user's own local copies of registry models live (models dir, HF cache)."""
    return [models_dir().resolve(), hf_cache_dir().resolve()]


def check_untrusted_reference(name: object, *, key: str, source: Path, untrusted_root: Path) -> None:
    """Refuse a model that untrusted data (a model directory's config.json) names, unless safe.

    Loading a model can run code (a pyannote config.yaml names Python callables; a
    sentence-transformers modules.json names classes), so a model directory may name only
    registry aliases, or paths to the user's own copies under the models dir / HF cache;
    never a hub id, another path, or anything inside the model directory itself (where an
    alias could also be shadowed when it is the working directory). One-line ConfigError
    naming `source` and `key`.
    """
    where = f"{source}: {key} = {name!r}"
    fix = ("a model directory may only name registry models (`hilbert models list`) or their local copies "
           f"under {models_dir()} or the HF cache")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: expected a model name; {fix}")
    root = untrusted_root.resolve()
    p = Path(name).expanduser()
    if p.exists() or p.is_absolute():
        target = p.resolve()
        if _inside(target, root) or not any(_inside(target, r) for r in _trusted_roots()):
            raise ConfigError(f"{where}: a path outside the models dir and HF cache is not loaded from a model "
                              f"directory; {fix} (your own pipeline or model: pass it on the command line, "
                              "e.g. `hilbert prepare --diarization-model PATH`)")
        return
    spec = registry().get(name)
    if spec is None:
        raise ConfigError(f"{where}: not a registry alias; {fix}")
    if spec.source != "hf":  # builtin, or weights inside an installed package
        return
    found = locate(name)
    if found.path is not None and _inside(found.path.resolve(), root):
        raise ConfigError(f"{where}: resolves to {found.path}, inside the model directory itself; {fix}")


def resolve(name: str, *, kind: Kind | None = None) -> ResolvedModel:
    """Resolve `name` to a local directory, downloading from the hub only when online.

    Raises ModelUnavailable with one line naming the alias, where it looked and the pull
    command, when the model cannot be had.
    """
    found = locate(name)
    spec = found.spec
    if kind is not None and found.where != "path" and spec.kind != kind:
        raise ModelUnavailable(f"model '{name}' is a {spec.kind}, not a {kind}")
    if found.where == "missing":
        if spec.source == "package":
            package_dir(spec)  # raises with the install hint
        raise ModelUnavailable(
            f"model '{spec.alias}' ({spec.repo}) is not available offline: looked in "
            f"{_looked(spec)}; run `{spec.pull_hint}` on a connected machine "
            f"(or pass a local directory)"
        )
    if found.where == "hub":
        return pull(spec.alias)
    return found


def pull(alias: str, to: Path | None = None) -> ResolvedModel:
    """Download `alias` from the hub (into `to`/<alias> when given, else the HF cache)."""
    spec = get_spec(alias)
    if spec.source != "hf":
        return locate(alias)
    if is_offline():
        raise ModelUnavailable(f"cannot pull '{alias}' ({spec.repo}): offline (HF_HUB_OFFLINE=1)")
    from huggingface_hub import snapshot_download

    token = os.environ.get("HF_TOKEN")
    try:
        if to is not None:
            dest = Path(to) / alias
            p = Path(snapshot_download(spec.repo, revision=spec.revision, local_dir=dest, token=token))
            return ResolvedModel(spec, p, "models_dir", revision=spec.revision)
        p = Path(snapshot_download(spec.repo, revision=spec.revision, token=token, cache_dir=hf_cache_dir()))
    except Exception as exc:  # network, auth (gated pyannote repos), missing revision
        raise ModelUnavailable(f"could not pull '{alias}' ({spec.repo}): {' '.join(str(exc).split())[:300]}") from exc
    return ResolvedModel(spec, p, "hf_cache", revision=p.name)
