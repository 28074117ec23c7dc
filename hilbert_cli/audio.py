"""Streamed audio decoding with PyAV: any format FFmpeg reads -> 16 kHz mono float32 chunks.

Nothing here holds a whole recording: `stream_chunks` yields bounded chunks, and
`iter_spans` cuts (possibly overlapping) time spans out of one streaming pass, keeping only
the samples that a pending span still needs. Sample positions are counted from the first
decoded sample, so chunk edges neither lose nor duplicate a sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import InputError

SAMPLE_RATE = 16_000


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


def _decoded_blocks(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Resampled mono float32 blocks, as FFmpeg hands them over (a few ms each)."""
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        resampler = None
        stereo = False

        def convert(out) -> np.ndarray:
            x = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            # stereo: the mean of the two channels (FFmpeg's own stereo->mono matrix sums them
            # at -3 dB each, which raises the level and can exceed 1.0)
            return x.reshape(-1, 2).mean(axis=1, dtype=np.float32) if stereo else x

        try:
            for frame in container.decode(stream):
                if resampler is None:
                    # decided on the first frame: two channels are averaged here, any other
                    # layout is downmixed by FFmpeg (layout-aware: 5.1 keeps its centre channel)
                    stereo = frame.layout.nb_channels == 2
                    resampler = av.AudioResampler(format="flt", layout="stereo" if stereo else "mono", rate=sample_rate)
                for out in resampler.resample(frame):
                    yield convert(out)
            if resampler is not None:
                for out in resampler.resample(None):
                    yield convert(out)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: audio data is corrupt or truncated ({' '.join(str(exc).split())[:200]})") from exc
    finally:
        container.close()


def stream_chunks(path: str | Path, chunk_s: float = 30.0, sample_rate: int = SAMPLE_RATE) -> Iterator[Chunk]:
    """Yield consecutive chunks of exactly `chunk_s` seconds (the last may be shorter).

    Raises InputError when the file decodes to no samples at all.
    """
    size = max(1, int(round(chunk_s * sample_rate)))
    buf = np.empty(size, dtype=np.float32)
    fill = 0
    pos = 0
    for block in _decoded_blocks(path, sample_rate):
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


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Whole recording in memory: for short clips and tests only; stages use the streaming API."""
    return np.concatenate([c.samples for c in stream_chunks(path, 60.0, sample_rate)])


def iter_spans(
    path: str | Path,
    spans: Sequence[tuple[float, float]],
    sample_rate: int = SAMPLE_RATE,
    chunk_s: float = 10.0,
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

    for chunk in stream_chunks(path, chunk_s, sample_rate):
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
