"""Frozen segment encoders: the two protocols every backbone implements, and their factories.

An audio encoder maps 16 kHz mono float32 clips (one per segment, any length) to one vector
each; a text encoder maps segment texts to one vector each. Both run frozen, in eval mode,
with no gradient. Implementations:

- ``spec``                                  log-mel statistics (torchaudio, no weights)  -> spec.py
- ``egemaps``                               eGeMAPSv02 functionals (opensmile, [egemaps]) -> egemaps.py
- ``ct2-whisper`` (``whisperTinyEnc``, any CTranslate2 Whisper directory or ASR alias)
                                            the encoder of the model ASR loads            -> whisper_encoder.py
- ``a+b``                                   several audio encoders joined: the concatenation
                                            of their vectors (ConcatAudioEncoder below)
- ``whisper`` / ``hubert`` / ``wav2vec2`` / ``wav2vec2-conformer`` (and any other
  transformers speech encoder with a feature extractor)                                  -> hf_audio.py
- ``sentence-transformers``                 text encoders                                -> text.py
- ``clap``                                  audio and text towers of CLAP                -> clap.py
  (owned by the compare work; constructed as ``ClapAudioEncoder(path, device, alias=...,
  provenance=..., **opts)`` / ``ClapTextEncoder(...)``)

Optional attributes an implementation may carry (the pipeline reads them with getattr):
``provenance: dict`` (model id / revision / arch for the Parquet metadata; defaults to
alias + dim), ``max_input_s: float | None`` (longest clip one forward pass takes; the
encoder itself chunks longer clips), ``device: str``, ``options: dict`` (settings that change
the output, e.g. the layer; part of the cache key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, ModelUnavailable
from .loading import quiet_loading

#: transformers model_type (config.json) -> our arch name
_AUDIO_MODEL_TYPES = {
    "whisper": "whisper",
    "hubert": "hubert",
    "wav2vec2": "wav2vec2",
    "wav2vec2-conformer": "wav2vec2-conformer",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec-audio",
    "unispeech-sat": "unispeech-sat",
    "clap": "clap",
}
HF_AUDIO_ARCHS = frozenset(set(_AUDIO_MODEL_TYPES.values()) - {"clap"})


@runtime_checkable
class AudioEncoder(Protocol):
    """16 kHz mono float32 clips -> [n, dim] float32 (row i is clip i; batching never changes a row)."""

    alias: str
    dim: int

    def embed(self, clips: list[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Texts -> [n, dim] float32 (row i is text i)."""

    alias: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def encoder_provenance(encoder: Any) -> dict:
    """What goes into the features metadata for `encoder` (alias, dim, repo, revision, options)."""
    prov = dict(getattr(encoder, "provenance", None) or {})
    prov.setdefault("alias", encoder.alias)
    prov["dim"] = int(encoder.dim)
    opts = getattr(encoder, "options", None)
    if opts:
        prov["options"] = dict(opts)
    return prov


def _config_model_type(path: Path) -> str | None:
    cfg = path / "config.json"
    if not cfg.is_file():
        return None
    try:
        return json.loads(cfg.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{cfg}: unreadable model config ({exc})") from exc


def _resolve(name: str, kind: str):
    """(resolved model, arch) for an alias or a local directory."""
    from ..registry import resolve

    kinds = {"audio": ("audio_encoder", "audio_text_encoder"), "text": ("text_encoder", "audio_text_encoder")}[kind]
    try:
        found = resolve(name)
    except ModelUnavailable:
        raise
    spec = found.spec
    if kind == "audio" and found.where != "path" and spec.kind == "asr" and spec.arch == "ctranslate2":
        return found, "ct2-whisper"  # an ASR alias: its Whisper's encoder
    if found.where != "path" and spec.kind not in kinds:
        raise ModelUnavailable(f"model '{name}' is a {spec.kind}, not a {kind} encoder")
    arch = spec.arch
    if found.where == "path":
        p = found.path
        if p is None or not p.is_dir():
            raise ConfigError(f"{name}: expected a model directory")
        if kind == "text" and ((p / "modules.json").is_file() or (p / "config_sentence_transformers.json").is_file()):
            arch = "sentence-transformers"
        elif kind == "audio" and _is_ct2_whisper(p):
            arch = "ct2-whisper"
        else:
            mt = _config_model_type(p)
            if kind == "audio":
                if mt not in _AUDIO_MODEL_TYPES:
                    raise ConfigError(
                        f"{p}: not an audio encoder directory (config.json model_type={mt!r}; "
                        f"expected one of {', '.join(sorted(_AUDIO_MODEL_TYPES))})"
                    )
                arch = _AUDIO_MODEL_TYPES[mt]
            else:
                arch = "clap" if mt == "clap" else "sentence-transformers"
                if mt is None and arch == "sentence-transformers":
                    raise ConfigError(f"{p}: not a sentence-transformers or transformers model directory")
    return found, arch


def _is_ct2_whisper(path: Path) -> bool:
    from .whisper_encoder import is_ct2_whisper_dir

    return is_ct2_whisper_dir(path)


def split_joined(name: str) -> list[str]:
    """The parts of an `a+b` audio encoder name ([name] when it is one encoder or an existing path)."""
    if "+" not in name or Path(name).expanduser().exists():
        return [name]
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise ConfigError(f"audio encoder '{name}': an empty name between '+' signs")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"audio encoder '{name}': names an encoder twice")
    return parts


def resolve_encoder(name: str, kind: str) -> tuple[Any, str]:
    """(resolved model, arch) for `name` as an audio or text encoder, without loading weights.

    An `a+b` audio name resolves every part (the first part's model is returned, arch
    "concat"). Raises the one-line ModelUnavailable / ConfigError a user can act on,
    including for an installed extra that is missing (egemaps without opensmile).
    """
    parts = split_joined(name) if kind == "audio" else [name]
    resolved = [_resolve(p, kind) for p in parts]
    for _, arch in resolved:
        if arch == "egemaps":
            from .egemaps import require_opensmile

            require_opensmile()
    if len(resolved) > 1:
        return resolved[0][0], "concat"
    return resolved[0]


class ConcatAudioEncoder:
    """Several audio encoders as one: a clip's vector is the concatenation of theirs, in order.

    Recorded in the features metadata like one encoder (alias `a+b`, dim the sum), with each
    part's provenance and its slice (`parts`, `dims`). Parts keep their own units: scaling
    is the trainer's per-fold standardisation (see egemaps.py).
    """

    def __init__(self, alias: str, parts: list[Any]):
        self.alias = alias
        self.parts = parts
        self.dim = int(sum(int(p.dim) for p in parts))
        limits = [getattr(p, "max_input_s", None) for p in parts]
        self.max_input_s = min((x for x in limits if x), default=None)
        self.device = getattr(parts[0], "device", "cpu")
        self.options = {p.alias: dict(getattr(p, "options", None) or {}) for p in parts}
        self.provenance = {"alias": alias, "arch": "concat", "dim": self.dim,
                           "dims": [int(p.dim) for p in parts],
                           "parts": [encoder_provenance(p) for p in parts]}

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([np.asarray(p.embed(clips), dtype=np.float32) for p in self.parts], axis=1)


def load_audio_encoder(name: str, device: str = "auto", **opts: Any) -> AudioEncoder:
    """An audio encoder from a registry alias or a local directory (loaded once, frozen).

    opts (HF speech encoders): layer (int, hidden-state index; default the last layer),
    batch_size, max_input_s (chunk length; default the model's own limit), autocast (bool).
    spec: n_mels, n_fft, hop_ms. ct2-whisper: pool ("mean+std" | "mean"), batch_size,
    compute_type. `a+b`: every part gets the same opts (each ignores what it does not take).
    """
    from ..devices import pick_device

    parts = split_joined(name)
    if len(parts) > 1:
        resolve_encoder(name, "audio")  # every part can be had before any loads
        return ConcatAudioEncoder(name, [load_audio_encoder(p, device, **opts) for p in parts])
    found, arch = _resolve(name, "audio")
    dev = pick_device(device)
    prov = {**found.provenance(), "arch": arch}
    if arch == "spec":
        from .spec import SpecEncoder

        return SpecEncoder(alias=found.spec.alias, device=dev, provenance=prov, **opts)
    if arch == "egemaps":
        from .egemaps import EgemapsEncoder

        return EgemapsEncoder(alias=found.spec.alias, device=dev, provenance=prov, **opts)
    if arch == "ct2-whisper":
        from .whisper_encoder import CT2WhisperEncoder

        return CT2WhisperEncoder(found.path, alias=found.spec.alias, device=dev, provenance=prov, **opts)
    if arch == "clap":
        from .clap import ClapAudioEncoder

        return ClapAudioEncoder(found.path, dev, alias=found.spec.alias, provenance=prov, **opts)
    if arch in HF_AUDIO_ARCHS or arch == "local":
        from .hf_audio import HFAudioEncoder

        with quiet_loading():
            return HFAudioEncoder(found.path, alias=found.spec.alias, arch=arch, device=dev, provenance=prov, **opts)
    raise ConfigError(f"model '{name}': arch '{arch}' is not an audio encoder this tool can run")


def load_text_encoder(name: str, device: str = "auto", **opts: Any) -> TextEncoder:
    """A text encoder from a registry alias or a local directory (loaded once, frozen).

    opts (sentence-transformers): batch_size, normalize (bool, default False), max_seq_length.
    """
    from ..devices import pick_device

    found, arch = _resolve(name, "text")
    dev = pick_device(device)
    prov = {**found.provenance(), "arch": arch}
    if arch == "clap":
        from .clap import ClapTextEncoder

        return ClapTextEncoder(found.path, dev, alias=found.spec.alias, provenance=prov, **opts)
    if arch == "sentence-transformers":
        from .text import SentenceTextEncoder

        with quiet_loading():
            return SentenceTextEncoder(found.path, alias=found.spec.alias, device=dev, provenance=prov, **opts)
    raise ConfigError(f"model '{name}': arch '{arch}' is not a text encoder this tool can run")
