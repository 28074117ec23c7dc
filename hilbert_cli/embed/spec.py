"""`spec`: log-mel spectrogram statistics (mean and std of each mel band), no weights."""

from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE


class SpecEncoder:
    """Clip -> [mean over frames of log-mel (n_mels), std over frames (n_mels)]; dim = 2 * n_mels.

    Each clip is processed on its own (no padding exists, so nothing can leak); frames are
    25 ms windows every 10 ms. A clip shorter than one window is zero-padded to one window.
    """

    def __init__(self, alias: str = "spec", device: str = "cpu", provenance: dict | None = None,
                 n_mels: int = 64, n_fft: int = 400, hop_ms: float = 10.0, **_: object):
        import torch
        import torchaudio

        self.alias = alias
        self.n_mels, self.n_fft = int(n_mels), int(n_fft)
        self.hop = int(round(hop_ms * SAMPLE_RATE / 1000))
        self.dim = 2 * self.n_mels
        self.device = device
        self.options = {"n_mels": self.n_mels, "n_fft": self.n_fft, "hop_ms": float(hop_ms)}
        self.provenance = {**(provenance or {"alias": alias, "arch": "spec"}), "dim": self.dim}
        self.max_input_s = None
        self._torch = torch
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=self.n_fft, hop_length=self.hop, n_mels=self.n_mels, center=False, power=2.0
        ).to(device)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i, clip in enumerate(clips):
                x = np.asarray(clip, dtype=np.float32).reshape(-1)
                if x.size < self.n_fft:
                    x = np.pad(x, (0, self.n_fft - x.size))
                m = self._mel(torch.from_numpy(x).to(self.device))  # [n_mels, frames]
                lm = torch.log(m + 1e-6)
                std = lm.std(dim=1, unbiased=False)
                out[i] = torch.cat([lm.mean(dim=1), std]).float().cpu().numpy()
        return out
