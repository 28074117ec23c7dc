"""CLAP baseline encoders (the paper's "CLAP-LAION" row): audio and text towers of a LAION CLAP
checkpoint, loaded with transformers, implementing the AudioEncoder / TextEncoder protocols.

- Audio: 16 kHz mono clips are resampled to the checkpoint's rate (48 kHz for LAION CLAP) and
  cut into windows no longer than the feature extractor's ``max_length_s`` (10 s); each window
  is embedded (CLAP's own repeat-padding fills it to 10 s) and a clip's vector is the
  duration-weighted mean of its unit-norm window vectors, renormalised. Because we never hand
  the feature extractor a clip longer than its window, its random truncation and its random
  ``is_longer`` flag never act: an embedding is deterministic and the same batched or alone.
- Text: the checkpoint's tokenizer (truncated to the text tower's positions), the projected
  text embedding, unit norm.

Both towers are loaded separately (ClapAudioModelWithProjection / ClapTextModelWithProjection
from the same directory), so an audio-only run never holds the text tower in memory. Both
produce vectors in CLAP's joint space (``projection_dim``, 512 for LAION CLAP).
"""

from __future__ import annotations

import contextlib
import json
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ConfigError, ModelUnavailable
from .loading import quiet_loading


def _check_dir(path: Path | str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ModelUnavailable(f"{p}: CLAP model directory not found")
    cfg = p / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"{p}: not a CLAP model directory (no config.json)")
    try:
        mt = json.loads(cfg.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{cfg}: unreadable model config ({exc})") from exc
    if mt != "clap":
        raise ConfigError(f"{p}: config.json model_type={mt!r}, expected 'clap'")
    return p


def _identify(path: Path, alias: str | None, provenance: dict | None) -> tuple[str, dict]:
    """(alias, provenance) for a CLAP directory: given, else the registry entry that resolves to it."""
    if alias and provenance:
        return alias, dict(provenance)
    found = None
    try:
        from ..registry import locate, registry

        for name, spec in registry().items():
            if spec.arch != "clap":
                continue
            if alias and name != alias:
                continue
            r = locate(name)
            if r.path is not None and Path(r.path).resolve() == path.resolve():
                found = r
                break
    except Exception:  # registry missing or unreadable: provenance from the path alone
        found = None
    if found is not None:
        prov = found.provenance()
        return alias or found.spec.alias, dict(provenance or prov)
    name = alias or path.name
    prov = provenance or {"alias": name, "repo": None, "revision": None, "source": "path", "arch": "clap", "path": str(path)}
    return name, dict(prov)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32, copy=False)


class _ClapBase:
    def __init__(self, path, device: str, alias: str | None, provenance: dict | None, batch_size: int, autocast: bool):
        from ..devices import pick_device

        self.path = _check_dir(path)
        self.device = pick_device(device)
        self.alias, self.provenance = _identify(self.path, alias, provenance)
        self.provenance.setdefault("arch", "clap")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be >= 1 (got {batch_size})")
        self.batch_size = int(batch_size)
        self.autocast = bool(autocast)

    def _load(self, what: str, errors: tuple[type[BaseException], ...], **parts: Any) -> None:
        """Each part (attribute -> class) from_pretrained(self.path); the model frozen on the
        device; a part that cannot load is one ConfigError line naming the directory."""
        try:
            with quiet_loading():
                for attr, cls in parts.items():
                    setattr(self, attr, cls.from_pretrained(str(self.path)))
        except errors as exc:
            raise ConfigError(f"{self.path}: cannot load the CLAP {what} ({' '.join(str(exc).split())[:200]})") from exc
        self.model.eval().requires_grad_(False).to(self.device)

    def _autocast(self):
        import torch

        from ..devices import autocast_dtype

        dt = autocast_dtype(self.device) if self.autocast else None
        if dt is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dt)


class ClapAudioEncoder(_ClapBase):
    """CLAP audio tower: 16 kHz mono float32 clips -> [n, projection_dim] float32, unit norm."""

    def __init__(self, path: Path | str, device: str = "auto", *, alias: str | None = None,
                 provenance: dict | None = None, batch_size: int = 8, max_input_s: float | None = None,
                 autocast: bool = True, **_ignored: Any):
        super().__init__(path, device, alias, provenance, batch_size, autocast)
        import torch
        from transformers import ClapAudioModelWithProjection, ClapFeatureExtractor

        self._load("audio tower", (OSError, ValueError, KeyError),
                   feature_extractor=ClapFeatureExtractor, model=ClapAudioModelWithProjection)
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        window = float(self.feature_extractor.max_length_s)
        self.max_input_s = min(window, float(max_input_s)) if max_input_s else window
        self.dim = int(self.model.config.projection_dim)
        self.options = {"window_s": self.max_input_s}
        self._torch = torch

    def _windows(self, clip: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Cut a clip (at the model rate) into <= max_input_s windows of near-equal length."""
        n = len(clip)
        limit = int(round(self.max_input_s * self.sample_rate))
        if n == 0:  # empty segment: embed a short silence (CLAP repeat-pads it to the window)
            return [(np.zeros(self.sample_rate // 10, dtype=np.float32), 1.0)]
        k = max(1, -(-n // limit))
        bounds = np.linspace(0, n, k + 1).round().astype(int)
        return [(clip[a:b], float(b - a)) for a, b in zip(bounds[:-1], bounds[1:])]

    def _forward(self, windows: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        inputs = self.feature_extractor(windows, sampling_rate=self.sample_rate, return_tensors="pt")
        feats = inputs["input_features"].to(self.device)
        # every window fits CLAP's window, so none is "longer" (the extractor flags one at random)
        is_longer = torch.zeros((feats.shape[0], 1), dtype=torch.bool, device=self.device)
        with torch.inference_mode(), self._autocast():
            out = self.model(input_features=feats, is_longer=is_longer)
        emb = out.audio_embeds.float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        owner: list[int] = []
        weights: list[float] = []
        windows: list[np.ndarray] = []
        for i, clip in enumerate(clips):
            x = np.asarray(clip, dtype=np.float32).reshape(-1)
            for w, n in self._windows(_resample(x, SAMPLE_RATE, self.sample_rate)):
                owner.append(i)
                weights.append(n)
                windows.append(w)
        vecs = np.concatenate(
            [self._forward(windows[s : s + self.batch_size]) for s in range(0, len(windows), self.batch_size)]
        )
        out = np.zeros((len(clips), self.dim), dtype=np.float64)
        np.add.at(out, np.asarray(owner), vecs * np.asarray(weights)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)


class ClapTextEncoder(_ClapBase):
    """CLAP text tower: texts -> [n, projection_dim] float32, unit norm."""

    def __init__(self, path: Path | str, device: str = "auto", *, alias: str | None = None,
                 provenance: dict | None = None, batch_size: int = 32, max_tokens: int | None = None,
                 autocast: bool = True, **_ignored: Any):
        super().__init__(path, device, alias, provenance, batch_size, autocast)
        import torch
        from transformers import AutoTokenizer, ClapTextModelWithProjection

        self._load("text tower", (OSError, ValueError, KeyError, TypeError),
                   tokenizer=AutoTokenizer, model=ClapTextModelWithProjection)
        cfg = self.model.config
        limit = int(getattr(cfg, "max_position_embeddings", 514)) - 2  # RoBERTa offsets positions by pad+1
        tok_limit = int(getattr(self.tokenizer, "model_max_length", limit) or limit)
        self.max_tokens = min(limit, tok_limit, int(max_tokens) if max_tokens else limit)
        self.dim = int(cfg.projection_dim)
        self.options = {"max_tokens": self.max_tokens}
        self._torch = torch

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for s in range(0, len(texts), self.batch_size):
            batch = [t if isinstance(t, str) else "" for t in texts[s : s + self.batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode(), self._autocast():
                emb = self.model(**enc).text_embeds.float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
