"""Streamed audio decoding with PyAV: any format FFmpeg reads -> 16 kHz mono float32 chunks.

Nothing here holds a whole recording: `stream_chunks` yields bounded chunks, and
`iter_spans` cuts (possibly overlapping) time spans out of one streaming pass, keeping only
the samples that a pending span still needs. Sample positions are counted from the first
decoded sample, so chunk edges neither lose nor duplicate a sample.

Every channel layout is downmixed to the plain mean of its channels (level-preserving: the
same speech in every channel decodes as the mono file does, and the mean of samples within
±1 stays within ±1), and DC offset and sub-audio rumble are removed by a streaming high-pass
(`HIGHPASS_HZ`) before any stage sees the audio. Both act on the decoded sample stream, never
on chunks, so the output does not depend on `chunk_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import InputError

SAMPLE_RATE = 16_000
#: cut-off of the high-pass that removes DC offset before VAD and features (speech starts
#: near 70 Hz; a DC offset of a microphone or an ADC otherwise shifts VAD and embeddings)
HIGHPASS_HZ = 20.0
#: what the decoder does to the samples, for the stages' config hashes: work decoded another
#: way (before: FFmpeg's unnormalised downmix, no high-pass) must be redone, not resumed
DECODER = f"pyav-channel-mean-highpass-{HIGHPASS_HZ:g}hz"


@dataclass(frozen=True)
class AudioInfo:
    path: str
    duration_s: float | None  # from the container; None when it does not say
    sample_rate: int
    channels: int
    codec: str


@dataclass(frozen=True)
class Chunk:
    start_sample: int  # position of samples[0] in the whole recording, at the target rate
    samples: np.ndarray  # float32, mono

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE


def _open(path: str | Path):
    import av

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except PermissionError as exc:
        raise InputError(f"{p}: permission denied") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{p}: cannot decode audio ({' '.join(str(exc).split())[:200]})") from exc
    if not container.streams.audio:
        container.close()
        raise InputError(f"{p}: no audio stream in the file")
    return container


def probe(path: str | Path) -> AudioInfo:
    """Container-level facts, without decoding."""
    container = _open(path)
    try:
        s = container.streams.audio[0]
        dur = None
        if s.duration is not None and s.time_base is not None:
            dur = float(s.duration * s.time_base)
        elif container.duration:
            dur = container.duration / 1_000_000
        ch = s.codec_context.channels if hasattr(s.codec_context, "channels") else s.channels
        return AudioInfo(str(path), dur, int(s.codec_context.sample_rate or 0), int(ch or 0), s.codec_context.name)
    finally:
        container.close()


#: decoded samples gathered into one filter call: FFmpeg hands over ~1k-sample blocks, at
#: which the per-call overhead of scipy's filter would cost more than the decoding itself
_FILTER_BLOCK = 16_384


class _HighPass:
    """Streaming 2nd-order Butterworth high-pass (scipy lfilter, state carried across blocks).

    The state starts as if the signal had stood at its first block's mean forever, so a
    constant offset is removed from the first sample on, with no settling transient. Blocks
    are the decoder's, so the output depends on the sample stream only, not on how callers
    chunk it. One biquad: transfer-function form is as exact as second-order sections here
    (1e-12) and its per-call overhead is a sixth of sosfilt's.
    """

    def __init__(self, sample_rate: int, cutoff_hz: float = HIGHPASS_HZ):
        from scipy.signal import butter, lfilter_zi

        self._b, self._a = butter(2, cutoff_hz, btype="highpass", fs=sample_rate)
        self._zi_unit = lfilter_zi(self._b, self._a)
        self._zi: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        if not x.size:
            return x
        if self._zi is None:
            self._zi = self._zi_unit * float(np.mean(x, dtype=np.float64))
        y, self._zi = lfilter(self._b, self._a, x.astype(np.float64), zi=self._zi)
        return y.astype(np.float32)


def _channel_mean(out) -> np.ndarray:
    """A packed float frame of any layout -> its per-sample channel mean (mono float32)."""
    x = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    n = out.layout.nb_channels
    return x if n == 1 else x.reshape(-1, n).mean(axis=1, dtype=np.float32)


def _mono_blocks(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Resampled, downmixed mono float32 blocks, as FFmpeg hands them over (a few ms each).

    FFmpeg resamples every channel as it is (layout unchanged) and the channels are averaged
    here: FFmpeg's own downmix to mono is not normalised (a 6-channel file of the same speech
    came out 3.4x louder, beyond ±1) and drops channels it deems LFE.
    """
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        resampler = None
        try:
            for frame in container.decode(stream):
                if resampler is None:  # decided on the first frame
                    resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=sample_rate)
                for out in resampler.resample(frame):
                    yield _channel_mean(out)
            if resampler is not None:
                for out in resampler.resample(None):
                    yield _channel_mean(out)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: audio data is corrupt or truncated ({' '.join(str(exc).split())[:200]})") from exc
    finally:
        container.close()


def _gathered(blocks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Consecutive blocks joined into blocks of at least `size` samples (the last may be shorter)."""
    pending: list[np.ndarray] = []
    n = 0
    for block in blocks:
        pending.append(block)
        n += block.size
        if n >= size:
            yield np.concatenate(pending)
            pending, n = [], 0
    if pending:
        yield np.concatenate(pending)


def _decoded_blocks(path: str | Path, sample_rate: int, highpass_hz: float | None) -> Iterator[np.ndarray]:
    """Mono float32 blocks of about `_FILTER_BLOCK` samples, high-passed unless highpass_hz is
    None (the raw decode, for fidelity checks)."""
    highpass = _HighPass(sample_rate, highpass_hz) if highpass_hz else None
    for block in _gathered(_mono_blocks(path, sample_rate), _FILTER_BLOCK):
        yield highpass(block) if highpass is not None else block


def stream_chunks(path: str | Path, chunk_s: float = 30.0, sample_rate: int = SAMPLE_RATE, *,
                  highpass_hz: float | None = HIGHPASS_HZ) -> Iterator[Chunk]:
    """Yield consecutive chunks of exactly `chunk_s` seconds (the last may be shorter).

    Raises InputError when the file decodes to no samples at all.
    """
    size = max(1, int(round(chunk_s * sample_rate)))
    buf = np.empty(size, dtype=np.float32)
    fill = 0
    pos = 0
    for block in _decoded_blocks(path, sample_rate, highpass_hz):
        while block.size:
            take = min(size - fill, block.size)
            buf[fill : fill + take] = block[:take]
            fill += take
            block = block[take:]
            if fill == size:
                yield Chunk(pos, buf.copy())
                pos += size
                fill = 0
    if fill:
        yield Chunk(pos, buf[:fill].copy())
        pos += fill
    if pos == 0:
        raise InputError(f"{path}: contains no audio samples (zero-length)")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, *, highpass_hz: float | None = HIGHPASS_HZ) -> np.ndarray:
    """Whole recording in memory: for short clips and tests only; stages use the streaming API."""
    return np.concatenate([c.samples for c in stream_chunks(path, 60.0, sample_rate, highpass_hz=highpass_hz)])


def iter_spans(
    path: str | Path,
    spans: Sequence[tuple[float, float]],
    sample_rate: int = SAMPLE_RATE,
    chunk_s: float = 10.0,
    *,
    highpass_hz: float | None = HIGHPASS_HZ,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, samples) for each (start_s, end_s) span, in order of end time.

    One streaming pass; memory holds only the samples between the earliest pending span's
    start and the current read position. Spans past the end of the audio are clipped
    (an empty array when entirely past the end).
    """
    bounds = [(int(round(max(0.0, s) * sample_rate)), int(round(max(0.0, e) * sample_rate))) for s, e in spans]
    order = sorted(range(len(bounds)), key=lambda i: (bounds[i][1], bounds[i][0]))
    if not order:
        return
    buf_start = 0
    buf = np.empty(0, dtype=np.float32)
    k = 0  # next span in `order`
    pending_starts = sorted(bounds[i][0] for i in order)
    import bisect

    for chunk in stream_chunks(path, chunk_s, sample_rate, highpass_hz=highpass_hz):
        buf = np.concatenate([buf, chunk.samples]) if buf.size else chunk.samples
        buf_end = buf_start + buf.size
        while k < len(order) and bounds[order[k]][1] <= buf_end:
            i = order[k]
            s, e = bounds[i]
            yield i, buf[max(0, s - buf_start) : max(0, e - buf_start)].copy()
            pending_starts.pop(bisect.bisect_left(pending_starts, s))
            k += 1
        keep_from = pending_starts[0] if pending_starts else buf_end
        drop = min(max(0, keep_from - buf_start), buf.size)
        if drop:
            buf = buf[drop:]
            buf_start += drop
    buf_end = buf_start + buf.size
    while k < len(order):  # spans reaching past the end of the audio
        i = order[k]
        s, e = bounds[i]
        yield i, buf[max(0, s - buf_start) : max(0, min(e, buf_end) - buf_start)].copy()
        k += 1
