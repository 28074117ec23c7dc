"""Prosody per time span: median pitch (normalised autocorrelation via FFT) and energy (RMS dB).

Read from the recording with hilbert_cli.audio.iter_spans: one streaming pass, memory bounded
by the spans still pending, never the whole file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..audio import SAMPLE_RATE, iter_spans

FRAME = 400  # 25 ms
HOP = 160  # 10 ms
SILENCE_DB = -55.0  # frames below this are not speech
VOICED_MARGIN_DB = 25.0  # frames within this of the span's loudest frame count as voiced


PITCH_FRAME = 640  # 40 ms: two periods of a 50 Hz voice
PITCH_HOP = 320  # 20 ms
F0_MIN, F0_MAX = 60.0, 500.0


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    n = 1 + (x.size - size) // hop
    return np.lib.stride_tricks.as_strided(x, shape=(n, size), strides=(x.strides[0] * hop, x.strides[0]), writeable=False)


def _frame_pitch(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame F0 (Hz) and voicing strength from the normalised autocorrelation (FFT).

    O(N log N) (torchaudio's NCCF detector loops over lags in Python: far slower on hours of
    audio), single-threaded numpy (small arrays: no thread-pool contention). Of the
    autocorrelation peaks within 90 % of the best, the first (shortest lag) is taken, which
    avoids sub-octave errors; parabolic interpolation refines the lag.
    """
    if x.size < PITCH_FRAME:
        return np.zeros(0), np.zeros(0)
    fr = _frames(x, PITCH_FRAME, PITCH_HOP).astype(np.float64)
    fr = (fr - fr.mean(axis=1, keepdims=True)) * np.hanning(PITCH_FRAME)
    n_fft = 2048
    spec = np.fft.rfft(fr, n=n_fft)
    ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=n_fft)
    lo, hi = int(sample_rate / F0_MAX), int(sample_rate / F0_MIN)
    r = ac[:, lo : hi + 1] / np.maximum(ac[:, :1], 1e-12)
    best = r.max(axis=1)
    peak = np.zeros_like(r, dtype=bool)
    peak[:, 1:-1] = (r[:, 1:-1] >= r[:, :-2]) & (r[:, 1:-1] >= r[:, 2:])
    cand = peak & (r >= 0.9 * best[:, None])
    cand[:, -1] |= ~cand.any(axis=1)  # no interior peak: the edge
    i = np.clip(cand.argmax(axis=1), 1, r.shape[1] - 2)
    rows = np.arange(r.shape[0])
    a, b, c = r[rows, i - 1], r[rows, i], r[rows, i + 1]
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(den) > 1e-9, 0.5 * (a - c) / den, 0.0)
    lag = i + np.clip(shift, -0.5, 0.5) + lo
    return sample_rate / lag, b


def span_prosody(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, float]:
    """(median F0 in Hz over voiced frames, mean level in dB over voiced frames); NaN when none."""
    x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
    if x.size < FRAME:
        return float("nan"), float("nan")
    fr = _frames(x, FRAME, HOP).astype(np.float64)
    db = 10.0 * np.log10((fr * fr).mean(axis=1) + 1e-10)
    voiced = (db > SILENCE_DB) & (db > db.max() - VOICED_MARGIN_DB)
    if not voiced.any():
        return float("nan"), float("nan")
    energy = float(db[voiced].mean())
    f0, strength = _frame_pitch(x, sample_rate)
    if f0.size == 0:
        return float("nan"), energy
    # a pitch frame counts when periodic enough and its centre 25 ms frame is voiced
    centre = np.clip((np.arange(f0.size) * PITCH_HOP + PITCH_FRAME // 2 - FRAME // 2) // HOP, 0, db.size - 1)
    ok = (strength > 0.45) & voiced[centre]
    pitch = float(np.median(f0[ok])) if ok.any() else float("nan")
    return pitch, energy


def spans_prosody(path: str, spans: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (Hz) and energy (dB) for each span of the recording at `path` (NaN where unvoiced)."""
    pitch = np.full(len(spans), np.nan)
    energy = np.full(len(spans), np.nan)
    for i, samples in iter_spans(path, spans):
        pitch[i], energy[i] = span_prosody(samples)
    return pitch, energy
