"""ASR with faster-whisper on bounded windows (<= 30 s, cut at pauses).

The model is loaded once per run. Each window's samples come from one streaming pass over
the file (`iter_spans`), so memory holds at most `batch_size` windows whatever the length
of the recording. On CPU `workers` (`--asr-workers`) windows (default: one per usable core) go through
WhisperModel.transcribe at once, each on one CTranslate2 worker of one thread (one thread per
window keeps every core busy without OpenMP threads spinning against each other on a shared
machine; the windows are already speech, so faster-whisper's own VAD is off by default); the
words come out in window order, the same as one at a time. On CUDA up to `batch_size` windows
go through the BatchedInferencePipeline at once. Each word keeps its probability, and the statistics of
its ASR segment (avg_logprob, no_speech_prob, compression_ratio).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..audio import SAMPLE_RATE, iter_spans
from ..devices import usable_cores
from ..errors import ConfigError, ModelUnavailable
from .options import AsrOptions, PrepareOptions


@dataclass
class Word:
    start_s: float
    end_s: float
    word: str
    probability: float | None
    asr_segment: int | None
    avg_logprob: float | None
    no_speech_prob: float | None
    compression_ratio: float | None


def asr_windows(speech: Sequence[tuple[float, float]], max_s: float, duration_s: float, pad_s: float = 0.2,
                join_gap_s: float = 2.0) -> list[tuple[float, float]]:
    """Group speech regions into windows of at most `max_s` seconds, cut only between
    regions (pauses); a region longer than `max_s` is cut into equal pieces."""
    out: list[tuple[float, float]] = []
    cur: list[float] | None = None
    for s, e in speech:
        s, e = max(0.0, s - pad_s), min(duration_s, e + pad_s)
        if e <= s:
            continue
        if cur is not None and e - cur[0] <= max_s and s - cur[1] <= join_gap_s:
            cur[1] = max(cur[1], e)
            continue
        if cur is not None:
            out.append((cur[0], cur[1]))
        if e - s > max_s:
            n = int(np.ceil((e - s) / max_s))
            step = (e - s) / n
            for i in range(n - 1):
                out.append((s + i * step, s + (i + 1) * step))
            cur = [s + (n - 1) * step, e]
        else:
            cur = [s, e]
    if cur is not None:
        out.append((cur[0], cur[1]))
    # windows may touch after padding; never overlap (a word would be transcribed twice)
    fixed: list[tuple[float, float]] = []
    for s, e in out:
        if fixed and s < fixed[-1][1]:
            s = fixed[-1][1]
        if e - s > 0.05:
            fixed.append((round(s, 3), round(e, 3)))
    return fixed


def cpu_workers(options: AsrOptions) -> int:
    """Windows transcribed at once on CPU: `workers` (`--asr-workers`), or one per usable core."""
    return options.workers or usable_cores()


def load_asr(options: PrepareOptions, device: str = "cpu") -> "WhisperASR":
    """The ASR of a prepare run: its own options plus the stage's threads and decoding chunk."""
    return WhisperASR(options.asr, device, cpu_threads=options.cpu_threads, chunk_s=options.chunk_s)


class WhisperASR:
    """faster-whisper, loaded once; `transcribe(path, windows)` yields words in time order."""

    def __init__(self, options: AsrOptions, device: str = "cpu", *, cpu_threads: int = 0, chunk_s: float = 30.0) -> None:
        self.options = options
        self.cpu_threads, self.chunk_s = cpu_threads, chunk_s
        self.resolved = self.check(options)
        path = self.resolved.path
        self.device = "cuda" if device.startswith("cuda") else "cpu"
        ct = options.compute_type
        if ct == "auto":
            ct = "float16" if self.device == "cuda" else "int8"
        self.compute_type = ct
        try:
            from faster_whisper import BatchedInferencePipeline
        except ImportError as exc:  # pragma: no cover
            raise ModelUnavailable("faster-whisper is not installed (pip install faster-whisper)") from exc

        if options.vad_filter:  # faster-whisper's VAD runs silero on onnxruntime: telemetry off first
            from .diarize.vad import load_onnxruntime

            load_onnxruntime()
        index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
        self.workers = 1 if self.device == "cuda" else cpu_workers(options)
        self._shared_key: tuple | None = None
        try:
            self.model = self._load(path, index, ct)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"ASR model '{options.model}' ({path}) cannot be loaded: {' '.join(str(exc).split())[:200]}") from exc
        self.batched = BatchedInferencePipeline(self.model) if self.device == "cuda" and options.batch_size > 1 else None
        self.multilingual = bool(self.model.model.is_multilingual)

    def _load(self, path, index: int, ct: str):
        """The process-wide model, shared with the Whisper audio encoder (embed), with one
        CTranslate2 worker per ASR window transcribed at once (CPU: one thread each unless
        cpu_threads says)."""
        from ..embed.whisper_encoder import shared_whisper_model

        threads = self.cpu_threads or (1 if self.device == "cpu" else 0)
        self._shared_key = (path, self.device, index, ct)
        return shared_whisper_model(path, self.device, index, ct, threads, num_workers=self.workers)

    @staticmethod
    def check(options: AsrOptions):
        """Resolve the model to a local CTranslate2 directory without loading it (ConfigError /
        ModelUnavailable, one line, when it is not usable)."""
        from ..registry import resolve

        resolved = resolve(options.model, kind="asr")
        path = resolved.path
        if path is None or not (Path(path) / "model.bin").is_file():
            raise ConfigError(f"ASR model '{options.model}': {path} is not a CTranslate2 model directory (no model.bin)")
        if not (Path(path) / "tokenizer.json").is_file():
            raise ConfigError(f"ASR model '{options.model}': {path} has no tokenizer.json (faster-whisper would try the hub)")
        return resolved

    def provenance(self) -> dict:
        p = self.resolved.provenance()
        p.update(compute_type=self.compute_type, device=self.device, multilingual=self.multilingual)
        return p

    def close(self) -> None:
        from ..embed.whisper_encoder import release_shared_model

        self.batched = None
        self.model = None
        if self._shared_key is not None:
            release_shared_model(*self._shared_key)  # else the process-level cache would keep it loaded

    def _kwargs(self, language: str | None) -> dict:
        o = self.options
        return dict(
            language=language if self.multilingual else None,
            beam_size=o.beam_size,
            word_timestamps=True,
            condition_on_previous_text=o.condition_on_previous_text,
            temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if o.temperature_fallback else [0.0],
        )

    def transcribe(self, path: str | Path, windows: Sequence[tuple[float, float]]) -> tuple[list[Word], dict]:
        """Words of every window, in time order, and facts for the metadata (language)."""
        o = self.options
        language = o.language if self.multilingual else "en"
        words: list[Word] = []
        seg_id = 0
        spans = list(windows)
        info: dict = {"n_asr_windows": len(spans)}
        if not spans:
            return words, {**info, "language": language}
        pending: list[tuple[int, np.ndarray]] = []

        def run_batch(batch: list[tuple[int, np.ndarray]]) -> None:
            nonlocal seg_id, language
            if self.batched is not None and len(batch) > 1:
                audio = np.concatenate([x for _, x in batch])
                clips, pos = [], 0
                for _, x in batch:
                    clips.append({"start": pos / SAMPLE_RATE, "end": (pos + x.size) / SAMPLE_RATE})
                    pos += x.size
                offsets = [(c["start"], c["end"], i) for c, (i, _) in zip(clips, batch)]
                segments, tinfo = self.batched.transcribe(
                    audio, clip_timestamps=clips, batch_size=o.batch_size, **self._kwargs(language),
                    without_timestamps=True,
                )
                if language is None:
                    language = tinfo.language
                for seg in segments:
                    # the clip the segment came from: the one containing its midpoint
                    mid = (seg.start + seg.end) / 2
                    a, _, i = next((c for c in offsets if c[0] <= mid < c[1] + 1e-6), offsets[-1])
                    self._add(words, seg, seg_id, spans[i][0] - a, spans[i])
                    seg_id += 1
                return
        clips = ((i, x) for i, x in iter_spans(path, spans, chunk_s=self.chunk_s) if x.size >= SAMPLE_RATE // 10)
        if self.batched is None:
            for i, segments, language in self._windows(clips, language):
                for seg in segments:
                    self._add(words, seg, seg_id, spans[i][0], spans[i])
                    seg_id += 1
        else:
            for i, x in clips:
                pending.append((i, x))
                if len(pending) >= o.batch_size:
                    run_batch(pending)
                    pending = []
            if pending:
                run_batch(pending)
        words.sort(key=lambda w: (w.start_s, w.end_s))
        info.update(language=language, n_asr_segments=seg_id)
        return words, info

    def _window(self, x: np.ndarray, language: str | None) -> tuple[list, str | None]:
        """One window through WhisperModel.transcribe: its segments, and the language used."""
        segments, tinfo = self.model.transcribe(x, vad_filter=self.options.vad_filter, **self._kwargs(language))
        segments = list(segments)
        if language is None and self.multilingual:
            language = tinfo.language  # detected once, then kept for the recording
        return segments, language

    def _windows(self, clips: Iterable[tuple[int, np.ndarray]], language: str | None):
        """(index, segments, language) per window, in window order, `self.workers` at a time.

        At most two windows per worker are decoded and waiting (bounded memory); a language
        still to detect is detected on the first window alone, then kept."""
        it = iter(clips)
        if language is None and self.multilingual:
            for i, x in it:
                segments, language = self._window(x, language)
                yield i, segments, language
                break
        if self.workers <= 1:
            for i, x in it:
                segments, language = self._window(x, language)
                yield i, segments, language
            return
        queue: deque[tuple[int, Future]] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="hilbert-asr") as pool:
            for i, x in it:
                queue.append((i, pool.submit(self._window, x, language)))
                if len(queue) >= 2 * self.workers:
                    j, fut = queue.popleft()
                    yield j, *fut.result()
            while queue:
                j, fut = queue.popleft()
                yield j, *fut.result()

    @staticmethod
    def _add(words: list[Word], seg, seg_id: int, shift: float, window: tuple[float, float] | None = None) -> None:
        lo, hi = window if window is not None else (-np.inf, np.inf)

        def clip(t: float) -> float:
            # Whisper's timestamps can run past the audio it was given (hallucinated tails)
            return float(min(max(t, lo), hi))

        stats = (
            float(seg.avg_logprob) if seg.avg_logprob is not None else None,
            float(seg.no_speech_prob) if seg.no_speech_prob is not None else None,
            float(seg.compression_ratio) if seg.compression_ratio is not None else None,
        )
        seg_words = list(seg.words or [])
        if not seg_words and seg.text.strip():
            # no word timings (should not happen with word_timestamps=True): spread the text
            toks = seg.text.split()
            span = max(seg.end - seg.start, 0.01)
            for k, tok in enumerate(toks):
                a = seg.start + span * k / len(toks)
                words.append(Word(clip(a + shift), clip(a + span / len(toks) + shift), tok, None, seg_id, *stats))
            return
        for w in seg_words:
            text = w.word.strip()
            if not text:
                continue
            words.append(Word(clip(float(w.start) + shift), clip(float(max(w.end, w.start)) + shift), text,
                              float(w.probability) if w.probability is not None else None, seg_id, *stats))
