"""The encoder of a CTranslate2 Whisper (the model ASR loads) as a frozen segment encoder.

A segment's vector pools the encoder's frames (50 per second, one per 320 samples) that its
own audio produced: mean and standard deviation over frames (``pool="mean+std"``, the
default) or their mean alone (``pool="mean"``).

Each segment is encoded on its own at its exact length (CTranslate2's Whisper takes mel
inputs shorter than 30 s), not padded to a 30 s window and not packed with its neighbours.
Measured on real speech (EmoDB, tiny.en int8, 2 busy CPU cores; figures printed by
benchmarks/bench_audio_encoders.py):

- padding every segment to 30 s (Whisper's training input) runs at 1.6x real time, exact
  length at 31x;
- packing several segments into one 30 s window runs at 27x, but a segment's frames then
  attend to its window neighbours and carry its absolute position, so its vector depends on
  what shares its window: centred cosine to its own one-window vector 0.22 (mean part),
  against 0.74 at exact length; nearest-neighbour identification 80 % vs 100 %.
  ``pack=True`` keeps that mode for measurement; it is not the default.
- pooling: on 200 per-speaker EmoDB documents (leave-one-speaker-out logistic regression
  on document mean+std), mean+std per segment gave pooled out-of-fold AUC 0.782 (fold mean
  0.926 +- 0.067), mean alone 0.721 (0.945 +- 0.042). Neither wins on both; mean+std is
  kept for its pooled AUC (the figure that needs scores comparable across speakers).

Clips longer than 30 s are cut into equal chunks (each encoded alone); the statistics pool
over all of the clip's frames. Clips of the same length are batched (no padding exists, so
batching never changes a row). The loaded model is shared with ASR through
`shared_whisper_model` (one copy per (directory, device, compute type) in a process).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ConfigError, ModelUnavailable

HOP = 160  # mel hop (10 ms)
FRAME = 2 * HOP  # one encoder frame per 320 samples (the conv stem's stride 2)
WINDOW = 30 * SAMPLE_RATE  # the longest input the encoder's positional table covers
POOLS = ("mean", "mean+std")

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def ct2_device(device: str) -> tuple[str, int]:
    """(CTranslate2 device, index) for a hilbert device string; CPU when CT2 has no CUDA."""
    import ctranslate2

    if str(device).startswith("cuda") and ctranslate2.get_cuda_device_count() > 0:
        return "cuda", int(device.split(":")[1]) if ":" in device else 0
    return "cpu", 0


def auto_compute_type(ct2_dev: str, compute_type: str = "auto") -> str:
    """The compute type ASR picks for `auto` (float16 on CUDA, int8 on CPU), so both share one model."""
    if compute_type != "auto":
        return compute_type
    return "float16" if ct2_dev == "cuda" else "int8"


def is_ct2_whisper_dir(path: Path) -> bool:
    """A CTranslate2 Whisper directory: model.bin plus CT2's config.json (no transformers model_type)."""
    import json

    cfg = Path(path) / "config.json"
    if not (Path(path) / "model.bin").is_file() or not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "model_type" not in data and ("suppress_ids" in data or "lang_ids" in data)


def shared_whisper_model(path: Path, device: str = "cpu", device_index: int = 0, compute_type: str = "int8",
                         cpu_threads: int = 0, num_workers: int = 1):
    """One loaded CT2 Whisper per (directory, device, index, compute type) in this process.

    With tokenizer.json in the directory this is a faster_whisper.WhisperModel (ASR needs
    it; the encoder uses its `.model`); without one, a bare ctranslate2.models.Whisper
    (faster-whisper would fetch a tokenizer from the hub). cpu_threads and num_workers (CT2
    calls that may run at once, one thread each: ASR's parallel windows) only change speed,
    so the first caller's values stay.
    """
    key = _key(path, device, device_index, compute_type)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _load(Path(key[0]), device, device_index, compute_type, cpu_threads, key[-1], num_workers)
            _MODELS[key] = model
        return model


def release_shared_model(path: Path, device: str = "cpu", device_index: int = 0, compute_type: str = "int8") -> None:
    """Forget one shared model (its memory returns once no ASR / encoder still holds it)."""
    with _LOCK:
        _MODELS.pop(_key(path, device, device_index, compute_type), None)


def _key(path: Path, device: str, device_index: int, compute_type: str) -> tuple:
    p = Path(path).resolve()
    return (str(p), device, int(device_index), compute_type, (p / "tokenizer.json").is_file())


def _load(path: Path, device: str, index: int, compute_type: str, cpu_threads: int, full: bool,
          num_workers: int = 1):
    try:
        if full:
            from faster_whisper import WhisperModel

            return WhisperModel(str(path), device=device, device_index=index, compute_type=compute_type,
                                cpu_threads=cpu_threads, num_workers=num_workers)
        import ctranslate2

        return ctranslate2.models.Whisper(str(path), device=device, device_index=index, compute_type=compute_type,
                                          intra_threads=cpu_threads, inter_threads=num_workers)
    except ImportError as exc:  # pragma: no cover
        raise ModelUnavailable(f"faster-whisper / ctranslate2 not installed: {exc}") from exc


class CT2WhisperEncoder:
    """16 kHz clips -> pooled Whisper encoder frames ([n, d] for mean, [n, 2d] for mean+std)."""

    def __init__(self, path: Path, *, alias: str, device: str = "cpu", provenance: dict | None = None,
                 pool: str = "mean+std", batch_size: int = 8, compute_type: str = "auto", pack: bool = False,
                 layer: int | None = None, **_: object):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        if layer is not None:
            raise ConfigError(f"audio encoder '{alias}': a CTranslate2 Whisper gives its last layer only (no --layer)")
        if pool not in POOLS:
            raise ConfigError(f"audio encoder '{alias}': pool must be one of {', '.join(POOLS)}, not {pool!r}")
        path = Path(path)
        if not is_ct2_whisper_dir(path):
            raise ConfigError(f"{path}: not a CTranslate2 Whisper directory (model.bin + CT2 config.json)")
        dev, index = ct2_device(device)
        self.compute_type = auto_compute_type(dev, compute_type)
        try:
            loaded = shared_whisper_model(path, dev, index, self.compute_type)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot load the CTranslate2 Whisper ({' '.join(str(exc).split())[:200]})") from exc
        self.model = getattr(loaded, "model", loaded)  # faster_whisper.WhisperModel wraps the CT2 model
        self._storage = ctranslate2.StorageView
        self.fe = FeatureExtractor(feature_size=int(self.model.n_mels))
        self.d_model = self._probe_width()
        self.alias, self.device, self.pool, self.pack = alias, dev, pool, bool(pack)
        self.batch_size = max(1, int(batch_size))
        self.dim = self.d_model * (2 if pool == "mean+std" else 1)
        self.max_input_s = None  # long clips are chunked inside
        self.options = {"pool": pool, "pack": self.pack}
        self.provenance = {**(provenance or {"alias": alias}), "arch": "ct2-whisper", "dim": self.dim,
                           "d_model": self.d_model, "compute_type": self.compute_type}

    # ---------- encoder ----------
    def _encode(self, audio: np.ndarray) -> np.ndarray:
        """[B, samples] (samples a multiple of 320, <= 30 s) -> [B, samples / 320, d_model] float32."""
        mel = np.stack([self.fe(x, padding=0) for x in audio]).astype(np.float32)
        out = self.model.encode(self._storage.from_array(np.ascontiguousarray(mel)), to_cpu=True)
        return np.asarray(out, dtype=np.float32)

    def _probe_width(self) -> int:
        return int(self._encode(np.zeros((1, FRAME * 2), np.float32)).shape[-1])

    # ---------- clips ----------
    @staticmethod
    def _chunks(clip: np.ndarray) -> list[np.ndarray]:
        """The clip in <= 30 s pieces, each zero-padded to a whole number of frames (at least one)."""
        x = np.asarray(clip, dtype=np.float32).reshape(-1)
        k = max(1, math.ceil(x.size / WINDOW))
        out = []
        for p in np.array_split(x, k) if k > 1 else [x]:
            n = max(FRAME, p.size + (-p.size) % FRAME)
            out.append(np.pad(p, (0, n - p.size)))
        return out

    def _frames_alone(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """Each chunk encoded on its own at its length; same-length chunks share a batch."""
        frames: list[np.ndarray | None] = [None] * len(chunks)
        by_len: dict[int, list[int]] = {}
        for j, c in enumerate(chunks):
            by_len.setdefault(c.size, []).append(j)
        for js in by_len.values():
            for k in range(0, len(js), self.batch_size):
                part = js[k:k + self.batch_size]
                for j, f in zip(part, self._encode(np.stack([chunks[j] for j in part]))):
                    frames[j] = f
        return frames  # type: ignore[return-value]

    def _frames_packed(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """Chunks laid end to end in 30 s windows (zero-padded), each window encoded once."""
        windows: list[list[int]] = [[]]
        used = 0
        for j, c in enumerate(chunks):
            if used + c.size > WINDOW:
                windows.append([])
                used = 0
            windows[-1].append(j)
            used += c.size
        frames: list[np.ndarray | None] = [None] * len(chunks)
        for k in range(0, len(windows), self.batch_size):
            group = windows[k:k + self.batch_size]
            audio = np.zeros((len(group), WINDOW), np.float32)
            spans = []
            for b, js in enumerate(group):
                pos = 0
                for j in js:
                    audio[b, pos:pos + chunks[j].size] = chunks[j]
                    spans.append((b, j, pos // FRAME, chunks[j].size // FRAME))
                    pos += chunks[j].size
            out = self._encode(audio)
            for b, j, a, n in spans:
                frames[j] = out[b, a:a + n]
        return frames  # type: ignore[return-value]

    def _pool(self, frames: list[np.ndarray]) -> np.ndarray:
        f = np.concatenate(frames).astype(np.float64)
        mean = f.mean(axis=0)
        if self.pool == "mean":
            return mean
        return np.concatenate([mean, f.std(axis=0)])

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        if not clips:
            return out
        chunks, owner = [], []
        for i, c in enumerate(clips):
            for p in self._chunks(c):
                chunks.append(p)
                owner.append(i)
        frames = self._frames_packed(chunks) if self.pack else self._frames_alone(chunks)
        per_clip: list[list[np.ndarray]] = [[] for _ in clips]
        for i, f in zip(owner, frames):
            per_clip[i].append(f)
        for i, fs in enumerate(per_clip):
            out[i] = self._pool(fs)
        return out
