"""Emotion-shift segmentation: prepare words table -> segments table.

1. Words of the selected speakers (the target speaker by default) form *sentence units*:
   a unit ends at sentence punctuation, at a pause >= unit_pause_s, or where the speaker
   changes; units longer than the max limits are split at their longest pauses.
2. Per unit: sentiment (VADER), polarity and subjectivity (Pattern lexicon), emotion
   distribution (classifier, when available), pitch and energy (audio), pause before it.
3. At every boundary between units a *change score* in [0, 1] compares the `context_words`
   before with those after: a weighted mean of the per-signal changes (only signals that are
   present count).
4. Hard cuts: speaker change, another speaker's words in between (turn), pause >= hard_pause_s.
   Between hard cuts, a dynamic programme picks the cuts that maximise
   sum(score - threshold) over cuts minus a small length prior, under min/max words and
   seconds: cuts go where the signals shift (of two shifts closer than the min limits, the
   stronger wins); a passage that never shifts is cut only where the max limits force it
   (at its best boundary).

Every segment keeps the boundary that opened it: cut_reason, change_score, the per-signal
changes (d_*), and its own mean signals, so a user can see why it was cut there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..contracts.embed import SEGMENTS_SCHEMA
from .options import SegmentOptions
from .signals import TextSignals, lexicon_signals, load_emotion

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_COMMA_END = re.compile(r"[,;:—–-]+[\"'”’)\]]*$")

SIGNALS = ("sentiment", "polarity", "subjectivity", "emotion", "pitch", "energy", "pause")


@dataclass
class Unit:
    first: int  # position in the selected word list
    last: int  # inclusive
    speaker: str
    start_s: float
    end_s: float
    n_words: int
    text: str
    hard_before: str | None = None  # speaker | turn | pause, when a hard cut precedes it
    pause_before: float = 0.0


@dataclass
class _Words:
    start: np.ndarray
    end: np.ndarray
    text: list[str]
    speaker: list[str]
    index: np.ndarray  # word_index
    turn_break: np.ndarray  # bool: another speaker's word lies between word i-1 and word i
    recording_id: str = ""


def _select(words: pa.Table, opts: SegmentOptions) -> _Words:
    n = words.num_rows
    cols = set(words.column_names)
    start = np.asarray(words.column("start_s").to_numpy(zero_copy_only=False), dtype=np.float64) if n else np.zeros(0)
    end = np.asarray(words.column("end_s").to_numpy(zero_copy_only=False), dtype=np.float64) if n else np.zeros(0)
    order = np.argsort(start, kind="stable")
    text = [(w or "").strip() for w in words.column("word").to_pylist()]
    speaker = [str(s) if s is not None else "" for s in words.column("speaker").to_pylist()] if "speaker" in cols else [""] * n
    target = words.column("is_target").to_pylist() if "is_target" in cols else [True] * n
    windex = words.column("word_index").to_pylist() if "word_index" in cols else list(range(n))
    rid = ""
    if "recording_id" in cols and n:
        rid = str(words.column("recording_id")[0].as_py())
    keep, breaks = [], []
    other_between = False
    for i in order:
        chosen = opts.speakers == "all" or bool(target[i])
        if not text[i]:
            continue
        if chosen:
            keep.append(i)
            breaks.append(other_between and len(keep) > 1)
            other_between = False
        else:
            other_between = True
    k = np.asarray(keep, dtype=np.int64)
    return _Words(
        start=start[k] if k.size else np.zeros(0),
        end=np.maximum(end[k], start[k]) if k.size else np.zeros(0),
        text=[text[i] for i in keep],
        speaker=[speaker[i] for i in keep],
        index=np.asarray([windex[i] for i in keep], dtype=np.int64),
        turn_break=np.asarray(breaks, dtype=bool),
        recording_id=rid,
    )


def _split_piece(w: _Words, a: int, b: int, opts: SegmentOptions, out: list[tuple[int, int]]) -> None:
    """Split words a..b (inclusive) into pieces within max_words / max_s at the longest pauses."""
    n = b - a + 1
    dur = w.end[b] - w.start[a]
    if n <= 1 or (n <= opts.max_words and dur <= opts.max_s):
        out.append((a, b))
        return
    lo, hi = a + max(1, n // 4), a + max(1, (3 * n) // 4)  # cut somewhere in the middle half
    best, best_val = lo, -math.inf
    for j in range(lo, hi + 1):  # cut before word j
        gap = w.start[j] - w.end[j - 1]
        val = gap + (0.2 if _COMMA_END.search(w.text[j - 1]) else 0.0) - 1e-3 * abs(j - (a + n / 2))
        if val > best_val:
            best, best_val = j, val
    _split_piece(w, a, best - 1, opts, out)
    _split_piece(w, best, b, opts, out)


def make_units(w: _Words, opts: SegmentOptions) -> list[Unit]:
    n = len(w.text)
    if n == 0:
        return []
    raw: list[tuple[int, int, str | None]] = []
    first, hard = 0, None
    for i in range(1, n + 1):
        if i < n:
            gap = w.start[i] - w.end[i - 1]
            reason = None
            if w.speaker[i] != w.speaker[i - 1]:
                reason = "speaker"
            elif w.turn_break[i]:
                reason = "turn"
            elif gap >= opts.hard_pause_s:
                reason = "pause"
            boundary = reason is not None or gap >= opts.unit_pause_s or bool(_SENTENCE_END.search(w.text[i - 1]))
            if not boundary:
                continue
        raw.append((first, i - 1, hard))
        if i < n:
            first, hard = i, reason
    units: list[Unit] = []
    for a, b, hard in raw:
        pieces: list[tuple[int, int]] = []
        _split_piece(w, a, b, opts, pieces)
        for k, (pa_, pb) in enumerate(pieces):
            units.append(
                Unit(
                    first=pa_, last=pb, speaker=w.speaker[pa_], start_s=float(w.start[pa_]), end_s=float(w.end[pb]),
                    n_words=pb - pa_ + 1, text=" ".join(w.text[pa_ : pb + 1]),
                    hard_before=hard if k == 0 else None,
                    pause_before=float(w.start[pa_] - w.end[pa_ - 1]) if pa_ > 0 else 0.0,
                )
            )
    return units


@dataclass
class UnitSignals:
    text: TextSignals
    pitch: np.ndarray  # [n] Hz, NaN where unknown
    energy: np.ndarray  # [n] dB, NaN where unknown
    weights: np.ndarray  # [n] words per unit
    d: dict[str, np.ndarray] = field(default_factory=dict)  # boundary b (before unit b): change per signal
    score: np.ndarray | None = None  # [n] combined change score at each boundary (0 for b = 0)


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    ok = ~np.isnan(x) if x.ndim == 1 else ~np.isnan(x).any(axis=1)
    if not ok.any():
        return float("nan")
    return float(np.average(x[ok], weights=w[ok], axis=0)) if x.ndim == 1 else np.average(x[ok], weights=w[ok], axis=0)


def boundary_scores(units: list[Unit], sig: UnitSignals, opts: SegmentOptions) -> None:
    """Fill sig.d and sig.score: change between the context before and after each boundary."""
    n = len(units)
    d = {k: np.full(n, np.nan) for k in SIGNALS}
    nw = sig.weights
    cum = np.concatenate([[0], np.cumsum(nw)])
    for b in range(1, n):
        # left window: units b-1, b-2, ... until context_words; right: b, b+1, ... (same hard block only)
        lo = b - 1
        while lo > 0 and cum[b] - cum[lo] < opts.context_words and units[lo].hard_before is None:
            lo -= 1
        hi = b
        while hi < n - 1 and cum[hi + 1] - cum[b] < opts.context_words and units[hi + 1].hard_before is None:
            hi += 1
        L, R = slice(lo, b), slice(b, hi + 1)
        t = sig.text
        for name, arr, scale in (("sentiment", t.sentiment, 2.0), ("polarity", t.polarity, 2.0), ("subjectivity", t.subjectivity, 1.0)):
            d[name][b] = min(1.0, abs(_wmean(arr[L], nw[L]) - _wmean(arr[R], nw[R])) / scale)
        if t.emotion is not None:
            el, er = _wmean(t.emotion[L], nw[L]), _wmean(t.emotion[R], nw[R])
            d["emotion"][b] = 0.5 * float(np.abs(np.asarray(el) - np.asarray(er)).sum())
        pl, pr = _wmean(sig.pitch[L], nw[L]), _wmean(sig.pitch[R], nw[R])
        if not (math.isnan(pl) or math.isnan(pr)) and pl > 0 and pr > 0:
            d["pitch"][b] = min(1.0, abs(12.0 * math.log2(pr / pl)) / 4.0)  # 4 semitones = full change
        el_, er_ = _wmean(sig.energy[L], nw[L]), _wmean(sig.energy[R], nw[R])
        if not (math.isnan(el_) or math.isnan(er_)):
            d["energy"][b] = min(1.0, abs(er_ - el_) / 6.0)  # 6 dB = full change
        d["pause"][b] = min(1.0, max(0.0, units[b].pause_before - 0.3) / 1.5)
    wts = opts.weights
    score = np.zeros(n)
    for b in range(1, n):
        num = den = 0.0
        for k in SIGNALS:
            v = d[k][b]
            if not math.isnan(v):
                num += getattr(wts, k) * v
                den += getattr(wts, k)
        score[b] = num / den if den > 0 else 0.0
    sig.d, sig.score = d, score


def _plan(units: list[Unit], a: int, b: int, gain: np.ndarray, opts: SegmentOptions) -> list[int]:
    """Cut positions (unit indices that start a segment) within units a..b-1 (one hard block)."""
    n = b - a
    words = np.concatenate([[0], np.cumsum([u.n_words for u in units[a:b]])])
    starts = [u.start_s for u in units[a:b]]
    ends = [u.end_s for u in units[a:b]]

    def cost(i: int, j: int) -> float | None:  # segment = units a+i .. a+j-1
        nw = words[j] - words[i]
        dur = ends[j - 1] - starts[i]
        single = j - i == 1
        if not single and (nw > opts.max_words or dur > opts.max_s):
            return None
        if not (i == 0 and j == n) and (nw < opts.min_words or dur < opts.min_s):
            # too short: allowed only where nothing else is possible (an isolated short piece)
            return -10.0
        return -opts.length_prior * (abs(nw - opts.target_words) / opts.target_words + abs(dur - opts.target_s) / opts.target_s)

    best = np.full(n + 1, -np.inf)
    prev = np.full(n + 1, -1, dtype=np.int64)
    best[0] = 0.0
    for j in range(1, n + 1):
        i = j - 1
        while i >= 0:
            c = cost(i, j)
            if c is None:
                break  # longer segments only get longer
            if best[i] > -np.inf:
                val = best[i] + c + (gain[a + i] if i > 0 else 0.0)
                if val > best[j]:
                    best[j], prev[j] = val, i
            i -= 1
    cuts, j = [], n
    while j > 0:
        i = int(prev[j])
        if i > 0:
            cuts.append(a + i)
        j = i
    return sorted(cuts)


class Segmenter:
    """Loads its signal models once (lexicons, optional emotion classifier); `segment` per recording."""

    def __init__(self, options: SegmentOptions | None = None, device: str = "cpu"):
        self.options = options or SegmentOptions()
        self.device = device
        self._emotion = None
        self._emotion_loaded = False

    @property
    def emotion_model(self):
        if not self._emotion_loaded:
            self._emotion = load_emotion(self.options.emotion, device=self.device)
            self._emotion_loaded = True
        return self._emotion

    def provenance(self) -> dict:
        if self._emotion_loaded:
            emo = self._emotion.provenance if self._emotion is not None else None
        else:  # without loading the classifier
            from .signals import emotion_provenance

            emo = emotion_provenance(self.options.emotion)
        return {
            "sentiment": "vaderSentiment (lexicon)",
            "subjectivity": "textblob PatternAnalyzer (lexicon)",
            "emotion": emo,
            "prosody": "librosa YIN F0 + RMS level" if self.options.prosody else None,
        }

    def unit_signals(self, units: list[Unit], audio_path: str | None) -> UnitSignals:
        texts = [u.text for u in units]
        ts = lexicon_signals(texts)
        emo = self.emotion_model
        if emo is not None and units:
            ts.emotion = emo.predict(texts)
            ts.emotion_labels = emo.labels
        n = len(units)
        pitch, energy = np.full(n, np.nan), np.full(n, np.nan)
        if self.options.prosody and audio_path and units:
            from .prosody import spans_prosody

            pitch, energy = spans_prosody(audio_path, [(u.start_s, u.end_s) for u in units])
        return UnitSignals(ts, pitch, energy, np.asarray([u.n_words for u in units], dtype=np.float64))

    def segment(self, words: pa.Table, audio_path: str | None = None, recording_id: str | None = None) -> pa.Table:
        opts = self.options
        w = _select(words, opts)
        rid = recording_id if recording_id is not None else w.recording_id
        units = make_units(w, opts)
        if not units:
            return SEGMENTS_SCHEMA.empty_table()
        sig = self.unit_signals(units, audio_path)
        boundary_scores(units, sig, opts)
        gain = sig.score - opts.threshold
        # hard blocks
        blocks, a = [], 0
        for i in range(1, len(units)):
            if units[i].hard_before is not None:
                blocks.append((a, i))
                a = i
        blocks.append((a, len(units)))
        starts = []
        for a, b in blocks:
            starts.append(a)
            starts.extend(_plan(units, a, b, gain, opts))
        starts.append(len(units))
        rows = []
        t = sig.text
        for k in range(len(starts) - 1):
            a, b = starts[k], starts[k + 1]
            U = units[a:b]
            first, last = U[0].first, U[-1].last
            start_s = float(w.start[first])
            end_s = float(w.end[last])
            if b < len(units):  # never overlap the next segment
                end_s = min(end_s, float(w.start[units[b].first]))
            end_s = max(end_s, start_s)
            sl = slice(a, b)
            nw = sig.weights[sl]
            if k == 0:
                reason = "start"
            elif units[a].hard_before is not None:
                reason = units[a].hard_before
            elif sig.score[a] >= opts.threshold:
                reason = "shift"
            else:
                reason = self._length_reason(units, starts, k)
            emo_label, emo_score = None, None
            if t.emotion is not None:
                m = np.average(t.emotion[sl], weights=nw, axis=0)
                emo_label, emo_score = t.emotion_labels[int(np.argmax(m))], float(np.max(m))

            def f(x):
                return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

            rows.append(
                {
                    "recording_id": rid,
                    "segment_index": k,
                    "speaker": U[0].speaker,
                    "start_s": start_s,
                    "end_s": end_s,
                    "text": " ".join(u.text for u in U),
                    "n_words": int(sum(u.n_words for u in U)),
                    "first_word": int(w.index[first]),
                    "last_word": int(w.index[last]),
                    "cut_reason": reason,
                    "change_score": None if k == 0 else f(sig.score[a]),
                    **{f"d_{s}": (None if k == 0 else f(sig.d[s][a])) for s in ("sentiment", "polarity", "subjectivity", "emotion", "pitch", "energy")},
                    "pause_s": None if k == 0 else f(units[a].pause_before),
                    "sentiment": f(_wmean(t.sentiment[sl], nw)),
                    "polarity": f(_wmean(t.polarity[sl], nw)),
                    "subjectivity": f(_wmean(t.subjectivity[sl], nw)),
                    "emotion": emo_label,
                    "emotion_score": f(emo_score),
                    "pitch_hz": f(_wmean(sig.pitch[sl], nw)),
                    "energy_db": f(_wmean(sig.energy[sl], nw)),
                }
            )
        return pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA)

    def _length_reason(self, units: list[Unit], starts: list[int], k: int) -> str:
        """Why a sub-threshold cut was made: merging with the previous segment would break a limit."""
        a0, b1 = starts[k - 1], starts[k + 1]
        nw = sum(u.n_words for u in units[a0:b1])
        if nw > self.options.max_words:
            return "max_words"
        if units[b1 - 1].end_s - units[a0].start_s > self.options.max_s:
            return "max_s"
        return "length"
