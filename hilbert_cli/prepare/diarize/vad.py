"""Streaming Silero VAD (v6, the ONNX model faster-whisper ships) over decoded chunks.

The model runs on 512-sample frames (32 ms at 16 kHz) with a recurrent state; we carry that
state, and the 64-sample context, from one chunk to the next, so the probabilities of a
streamed recording equal those of the whole recording processed at once. Only one float per
frame is kept (about 0.9 MB for two hours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ...audio import SAMPLE_RATE, stream_chunks

FRAME = 512
CONTEXT = 64
FRAME_S = FRAME / SAMPLE_RATE


def load_onnxruntime():
    """onnxruntime with its telemetry off (process-wide): hilbert never phones home, --offline or not.

    Every place hilbert uses onnxruntime imports it through here, before any session exists.
    """
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


class SileroVad:
    name = "silero-vad"

    def __init__(self) -> None:
        from faster_whisper.utils import get_assets_path

        onnxruntime = load_onnxruntime()

        self.path = str(Path(get_assets_path()) / "silero_vad_v6.onnx")
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"], sess_options=opts)

    def provenance(self) -> dict:
        return {"alias": "silero-vad", "repo": "snakers4/silero-vad", "revision": "v6 (faster-whisper asset)", "source": "package", "arch": "silero"}

    def probabilities(self, chunks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
        """Speech probability per 512-sample frame, and the total number of samples seen.

        The last partial frame is zero-padded (as silero does).
        """
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        context = np.zeros(CONTEXT, dtype=np.float32)
        rest = np.zeros(0, dtype=np.float32)
        probs: list[np.ndarray] = []
        total = 0
        for samples in chunks:
            total += samples.size
            x = np.concatenate([rest, samples]) if rest.size else samples
            n = (x.size // FRAME) * FRAME
            rest = x[n:].copy()
            if n:
                out, h, c, context = self._run(x[:n], h, c, context)
                probs.append(out)
        if rest.size:
            pad = np.zeros(FRAME, dtype=np.float32)
            pad[: rest.size] = rest
            out, h, c, context = self._run(pad, h, c, context)
            probs.append(out)
        return (np.concatenate(probs) if probs else np.zeros(0, np.float32)), total

    def _run(self, x: np.ndarray, h, c, context):
        frames = x.reshape(-1, FRAME)
        ctx = np.concatenate([context[None, :], frames[:-1, -CONTEXT:]], axis=0)
        batch = np.concatenate([ctx, frames], axis=1).astype(np.float32, copy=False)
        outs = []
        for i in range(0, batch.shape[0], 10_000):
            out, h, c = self.session.run(None, {"input": batch[i : i + 10_000], "h": h, "c": c})
            outs.append(np.asarray(out, dtype=np.float32).reshape(-1))
        return np.concatenate(outs), h, c, frames[-1, -CONTEXT:].copy()

    def file_probabilities(self, path: str | Path, chunk_s: float = 30.0) -> tuple[np.ndarray, int]:
        return self.probabilities(ch.samples for ch in stream_chunks(path, chunk_s))


def speech_regions(
    probs: np.ndarray,
    n_samples: int,
    *,
    threshold: float = 0.5,
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.3,
    speech_pad_s: float = 0.1,
) -> list[tuple[float, float]]:
    """Hysteresis over frame probabilities (silero's rule: enter at `threshold`, leave below
    `threshold - 0.15` for at least `min_silence_s`), short regions dropped, edges padded."""
    duration = n_samples / SAMPLE_RATE
    if probs.size == 0:
        return []
    neg = max(threshold - 0.15, 0.01)
    above = probs >= threshold
    below = probs < neg
    regions: list[list[float]] = []
    in_speech = False
    start = 0
    silence_start = None
    min_sil_frames = max(1, int(round(min_silence_s / FRAME_S)))
    for i in range(probs.size):
        if not in_speech:
            if above[i]:
                in_speech, start, silence_start = True, i, None
        else:
            if below[i]:
                if silence_start is None:
                    silence_start = i
                if i - silence_start + 1 >= min_sil_frames:
                    regions.append([start * FRAME_S, silence_start * FRAME_S])
                    in_speech, silence_start = False, None
            elif above[i]:
                silence_start = None
    if in_speech:
        regions.append([start * FRAME_S, (silence_start if silence_start is not None else probs.size) * FRAME_S])
    out: list[tuple[float, float]] = []
    for s, e in regions:
        if e - s < min_speech_s:
            continue
        s, e = max(0.0, s - speech_pad_s), min(duration, e + speech_pad_s)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return [(round(s, 3), round(e, 3)) for s, e in out if e > s]


def split_long(regions: list[tuple[float, float]], probs: np.ndarray, max_s: float) -> list[tuple[float, float]]:
    """Cut regions longer than `max_s` at their least speech-like frame (a pause, if any)."""
    out = []
    for s, e in regions:
        while e - s > max_s:
            lo = s + 0.5 * max_s
            hi = s + max_s
            i0, i1 = int(lo / FRAME_S), min(int(hi / FRAME_S), probs.size)
            if i1 > i0:
                cut = (i0 + int(np.argmin(probs[i0:i1]))) * FRAME_S
            else:
                cut = hi
            cut = min(max(cut, lo), hi)
            out.append((s, cut))
            s = cut
        out.append((s, e))
    return out
