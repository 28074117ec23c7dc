"""Prosody per time span: median pitch (librosa's YIN) and energy (RMS dB), both from librosa.

Read from the recording with hilbert_cli.audio.iter_spans: one streaming pass, memory bounded
by the spans still pending, never the whole file.

Why YIN: on 40 EmoDB utterances (80 s, one thread, 2 cores at load ~11; figures from
benchmarks/bench_pitch.py) against torchcrepe's CNN as the reference, a span's median F0 from
YIN with these voicing rules was over a semitone off on 10 % of spans (none an octave) at ~200x
real time (the hand-written autocorrelation it replaced: 2 %, ~300x); librosa's pYIN ran at
6x (22 % off, 10 % octave errors), torchcrepe itself at 1.4x and opensmile's F0 at 15x
(research licence): each would make segmentation slower than the rest of `hilbert score`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..audio import SAMPLE_RATE, iter_spans

FRAME = 400  # 25 ms (energy)
HOP = 160  # 10 ms
SILENCE_DB = -55.0  # frames below this are not speech
VOICED_MARGIN_DB = 25.0  # frames within this of the span's loudest frame count as voiced

PITCH_FRAME = 1024  # 64 ms: YIN needs two periods of the lowest F0 (60 Hz)
PITCH_HOP = 320  # 20 ms
F0_MIN, F0_MAX = 60.0, 500.0
#: a pitch frame counts as voiced only when its spectrum is far from flat (white noise ~0.5,
#: voiced speech ~0.01): YIN itself returns a pitch for every frame, noise included
MAX_FLATNESS = 0.05


def _db(x: np.ndarray, frame: int, hop: int, center: bool = False) -> np.ndarray:
    import librosa

    rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=center)[0]
    return 20.0 * np.log10(rms + 1e-5)


def _voiced(db: np.ndarray) -> np.ndarray:
    return (db > SILENCE_DB) & (db > db.max() - VOICED_MARGIN_DB)


def span_pitch(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Median F0 (Hz) over the span's loud, periodic frames; NaN when there are none."""
    import librosa

    if x.size < PITCH_FRAME:
        return float("nan")
    f0 = librosa.yin(x, fmin=F0_MIN, fmax=F0_MAX, sr=sample_rate, frame_length=PITCH_FRAME,
                     hop_length=PITCH_HOP)
    flat = librosa.feature.spectral_flatness(y=x, n_fft=PITCH_FRAME, hop_length=PITCH_HOP)[0]
    n = min(f0.size, flat.size)
    ok = _voiced(_db(x, PITCH_FRAME, PITCH_HOP, center=True))[:n] & (flat[:n] < MAX_FLATNESS)
    return float(np.median(f0[:n][ok])) if ok.any() else float("nan")


def span_prosody(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, float]:
    """(median F0 in Hz over voiced frames, mean level in dB over voiced frames); NaN when none."""
    x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
    if x.size < FRAME:
        return float("nan"), float("nan")
    db = _db(x, FRAME, HOP)
    voiced = _voiced(db)
    if not voiced.any():
        return float("nan"), float("nan")
    return span_pitch(x, sample_rate), float(db[voiced].mean())


def spans_prosody(path: str, spans: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (Hz) and energy (dB) for each span of the recording at `path` (NaN where unvoiced)."""
    pitch = np.full(len(spans), np.nan)
    energy = np.full(len(spans), np.nan)
    for i, samples in iter_spans(path, spans):
        pitch[i], energy[i] = span_prosody(samples)
    return pitch, energy
