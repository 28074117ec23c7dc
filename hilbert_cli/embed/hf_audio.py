"""Speech encoders from transformers (Whisper encoder, HuBERT, wav2vec2, wav2vec2-conformer,
WavLM, data2vec-audio), run frozen; a segment's vector is the mean of one layer's frames
that lie inside the segment.

Padding never leaks into a segment's vector:
- Whisper pads every clip on its own to the model's fixed 30 s window (as in training), so a
  clip's input does not depend on its batch; only frames inside the clip are averaged.
- wav2vec2-style models get right-padded batches with an attention mask, and only the
  frames computed from real samples are averaged (per-item frame counts from the model's
  own conv arithmetic). Models whose feature encoder uses group norm (statistics over time
  that would include the padding) are batched only with clips of the same length; the
  conformer's depthwise convolution gets its padded frames zeroed before it runs, which is
  exactly what a clip alone sees.
Clips longer than `max_input_s` are cut into equal chunks; the vector is the frame-weighted
mean over chunks.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ConfigError


class HFAudioEncoder:
    def __init__(self, path: Path, *, alias: str, arch: str, device: str = "cpu", provenance: dict | None = None,
                 layer: int | None = None, batch_size: int = 8, max_input_s: float | None = None,
                 max_batch_s: float | None = None, autocast: bool = True, **_: object):
        import torch
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        try:
            config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the model config ({' '.join(str(exc).split())[:200]})") from exc
        self.model_type = config.model_type
        self.is_whisper = self.model_type == "whisper"
        try:
            if self.is_whisper:
                from transformers import WhisperModel

                full = WhisperModel.from_pretrained(str(path), local_files_only=True)
                model = full.get_encoder()
                del full
            else:
                model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot load the audio encoder ({' '.join(str(exc).split())[:200]})") from exc
        self.model = model.eval().requires_grad_(False).to(device)
        self.config = config
        self.fe = self._feature_extractor(path)
        self.alias = alias
        self.arch = arch
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.dim = int(config.d_model if self.is_whisper else config.hidden_size)
        n_layers = int(config.encoder_layers if self.is_whisper else config.num_hidden_layers)
        if layer is not None and not -(n_layers + 1) <= int(layer) <= n_layers:
            raise ConfigError(f"audio layer {layer}: {alias} has hidden states 0..{n_layers} (0 = before the first layer)")
        self.layer = None if layer is None else int(layer)
        limit = 30.0
        if self.is_whisper:
            limit = float(self.fe.n_samples) / SAMPLE_RATE
            self.max_input_s = min(limit, float(max_input_s)) if max_input_s else limit
        else:
            self.max_input_s = float(max_input_s) if max_input_s else limit
        self.max_batch_samples = int((max_batch_s or self.batch_size * min(self.max_input_s, 15.0)) * SAMPLE_RATE)
        self.group_norm = getattr(config, "feat_extract_norm", "layer") == "group"
        self.do_normalize = bool(getattr(self.fe, "do_normalize", False)) and not self.is_whisper
        self.options = {"layer": self.layer, "max_input_s": self.max_input_s}
        self.provenance = {**(provenance or {"alias": alias}), "arch": arch, "model_type": self.model_type, "dim": self.dim}
        self._torch = torch
        self._autocast = None
        if autocast and str(device).startswith("cuda"):
            from ..devices import autocast_dtype

            self._autocast = autocast_dtype(device)
        self._frame_mask = None
        self._install_conv_masks()
        self._min_samples = self._compute_min_samples()

    # ---------- setup ----------
    def _feature_extractor(self, path: Path):
        from transformers import AutoFeatureExtractor

        try:
            return AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError):
            if self.is_whisper:
                from transformers import WhisperFeatureExtractor

                return WhisperFeatureExtractor(feature_size=self.config.num_mel_bins)
            from transformers import Wav2Vec2FeatureExtractor

            return Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)

    def _install_conv_masks(self) -> None:
        """Zero padded frames before every time convolution inside the encoder layers (conformer)."""
        if self.is_whisper:
            return
        for name, mod in self.model.named_modules():
            conv = getattr(mod, "depthwise_conv", None)
            if conv is not None and "encoder" in name:
                conv.register_forward_pre_hook(self._mask_hook)

    def _mask_hook(self, module, args):
        m = self._frame_mask
        if m is None:
            return None
        x = args[0]  # [B, C, T]
        if x.shape[-1] != m.shape[-1]:
            return None
        return (x * m[:, None, :].to(x.dtype),) + tuple(args[1:])

    # ---------- frames ----------
    def _n_frames(self, n_samples: int) -> int:
        if self.is_whisper:
            return max(1, min(self.config.max_source_positions, math.ceil(n_samples / (2 * self.fe.hop_length))))
        import torch

        return int(self.model._get_feat_extract_output_lengths(torch.tensor([n_samples])).item())

    def _compute_min_samples(self) -> int:
        if self.is_whisper:
            return 1
        n = 1
        while self._n_frames(n) < 1:
            n *= 2
        lo, hi = n // 2, n
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if self._n_frames(mid) >= 1:
                hi = mid
            else:
                lo = mid
        return hi

    # ---------- forward ----------
    def _forward(self, chunks: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """(sum of the layer's frames inside each chunk, frame count) for equal-treatment chunks."""
        torch = self._torch
        ctx = torch.autocast("cuda", dtype=self._autocast) if self._autocast is not None else contextlib.nullcontext()
        if self.is_whisper:
            # log-mel on the model's device (torch STFT) when it is a GPU; numpy on the CPU
            fe_dev = self.device if str(self.device).startswith("cuda") else "cpu"
            feats = self.fe(chunks, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding="max_length",
                            return_attention_mask=False, device=fe_dev).input_features.to(self.device)
            with torch.inference_mode(), ctx:
                out = self.model(feats, output_hidden_states=self.layer is not None)
            hs = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
            frames = [self._n_frames(len(c)) for c in chunks]
        else:
            lengths = [len(c) for c in chunks]
            T = max(lengths)
            x = np.zeros((len(chunks), T), dtype=np.float32)
            att = np.zeros((len(chunks), T), dtype=np.int64)
            for i, c in enumerate(chunks):
                x[i, : len(c)] = c
                att[i, : len(c)] = 1
            xt = torch.from_numpy(x).to(self.device)
            frames = [self._n_frames(n) for n in lengths]
            padded = min(lengths) != T
            kwargs = {}
            if padded or getattr(self.fe, "return_attention_mask", False):
                kwargs["attention_mask"] = torch.from_numpy(att).to(self.device)
            n_out = self._n_frames(T)
            self._frame_mask = None
            if padded:
                fm = torch.zeros((len(chunks), n_out), dtype=torch.float32, device=self.device)
                for i, f in enumerate(frames):
                    fm[i, :f] = 1
                self._frame_mask = fm
            try:
                with torch.inference_mode(), ctx:
                    out = self.model(xt, output_hidden_states=self.layer is not None, **kwargs)
            finally:
                self._frame_mask = None
            hs = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        hs = hs.float()
        res = []
        for i, f in enumerate(frames):
            f = min(f, hs.shape[1])
            res.append((hs[i, :f].sum(dim=0).cpu().numpy().astype(np.float64), f))
        return res

    def _prepare(self, clip: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(clip, dtype=np.float32).reshape(-1)
        if x.size < self._min_samples:
            x = np.pad(x, (0, self._min_samples - x.size))
        max_n = int(self.max_input_s * SAMPLE_RATE)
        k = max(1, math.ceil(x.size / max_n))
        pieces = np.array_split(x, k) if k > 1 else [x]
        out = []
        for p in pieces:
            if p.size < self._min_samples:
                p = np.pad(p, (0, self._min_samples - p.size))
            if self.do_normalize:  # per chunk, over its own samples only (as the feature extractor does)
                p = (p - p.mean()) / np.sqrt(p.var() + 1e-7)
            out.append(p.astype(np.float32))
        return out

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        chunks, owner = [], []
        for i, c in enumerate(clips):
            for p in self._prepare(c):
                chunks.append(p)
                owner.append(i)
        order = sorted(range(len(chunks)), key=lambda j: -len(chunks[j]))
        sums = np.zeros((len(clips), self.dim), dtype=np.float64)
        counts = np.zeros(len(clips), dtype=np.float64)
        k = 0
        while k < len(order):
            batch = [order[k]]
            longest = len(chunks[order[k]])
            k += 1
            while k < len(order) and len(batch) < self.batch_size:
                nxt = len(chunks[order[k]])
                if self.group_norm and nxt != longest:
                    break  # group norm: same-length clips only
                if self.is_whisper:
                    pass  # every item is padded to the fixed window on its own
                elif (len(batch) + 1) * longest > self.max_batch_samples:
                    break
                batch.append(order[k])
                k += 1
            for j, (s, f) in zip(batch, self._forward([chunks[j] for j in batch])):
                sums[owner[j]] += s
                counts[owner[j]] += f
        return (sums / np.maximum(counts, 1.0)[:, None]).astype(np.float32)
