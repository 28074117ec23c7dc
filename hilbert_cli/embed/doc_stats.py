"""Document statistics of one recording: how much was said, how fast, with what pauses.

Attention and mean pooling normalise these away, yet in clinical interviews they are among
the best-known signals (shorter answers, slower speech, longer pauses in depression). They
are computed from the words table alone (every prepare path, ASR or given transcripts,
writes one), so they exist wherever a features file exists, and are recorded in the features
file's metadata under ``doc_stats`` (docs/CONTRACTS.md, "Document statistics").

Definitions (the target speaker = words with ``is_target``; "other" = the rest):
- a *turn* is a maximal run of time-ordered words by one speaker;
- a *pause* is a gap of at least ``PAUSE_MIN_S`` between consecutive words inside one
  target turn (a gap across another speaker's words is turn-taking, not a pause);
- *speaking time* is the sum of turn spans (first word start to last word end).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pyarrow as pa

#: the 250 ms silent-pause threshold common in clinical speech research
PAUSE_MIN_S = 0.25


@dataclass(frozen=True)
class DocStats:
    """Per-recording statistics of the target speaker (and of the others, where present)."""

    speaking_time_s: float = 0.0
    n_words: int = 0
    n_segments: int = 0
    words_per_minute: float = 0.0
    pause_count: int = 0
    pause_mean_s: float = 0.0
    pause_p90_s: float = 0.0
    turn_count: int = 0
    turn_mean_s: float = 0.0
    turn_mean_words: float = 0.0
    share_of_speech: float = 0.0
    other_speaking_time_s: float = 0.0
    other_n_words: int = 0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict) -> "DocStats":
        """From recorded metadata; a key this version does not know is ignored, a missing one is 0."""
        names = {f.name: f.type for f in fields(cls)}
        kw = {k: (int(v) if names[k] == "int" else float(v)) for k, v in (raw or {}).items() if k in names}
        return cls(**kw)


#: names of the model's side-input vector, in order (see ``feature_vector``)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(DocStats))

# counts and durations are heavy-tailed: the model sees log1p of them, shares and rates as is
_LOG_SCALED = frozenset(FEATURE_NAMES) - {"share_of_speech"}


def _turns(start: np.ndarray, end: np.ndarray, speaker: list[str]) -> list[tuple[int, int]]:
    """[first, last] word positions of each maximal same-speaker run (words in time order)."""
    runs: list[tuple[int, int]] = []
    for i in range(len(speaker)):
        if runs and speaker[i] == speaker[runs[-1][0]]:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def document_stats(words: pa.Table, n_segments: int = 0) -> DocStats:
    """DocStats of one recording's words table (columns start_s, end_s, word; speaker and
    is_target when present: no speaker column = one speaker, no is_target = all target)."""
    n = words.num_rows
    if n == 0:
        return DocStats(n_segments=int(n_segments))
    cols = set(words.column_names)
    start = np.asarray(words.column("start_s").to_numpy(zero_copy_only=False), dtype=np.float64)
    end = np.asarray(words.column("end_s").to_numpy(zero_copy_only=False), dtype=np.float64)
    text = [(w or "").strip() for w in words.column("word").to_pylist()]
    speaker = [str(s) if s is not None else "" for s in words.column("speaker").to_pylist()] if "speaker" in cols \
        else [""] * n
    target = [bool(t) for t in words.column("is_target").to_pylist()] if "is_target" in cols else [True] * n
    order = [i for i in np.argsort(start, kind="stable") if text[i]]
    start, end = start[order], np.maximum(end[order], start[order])
    speaker, target = [speaker[i] for i in order], [target[i] for i in order]

    t_time = o_time = 0.0
    t_turns: list[tuple[float, int]] = []  # (span, n_words) of each target turn
    pauses: list[float] = []
    for a, b in _turns(start, end, speaker):
        span = float(end[b] - start[a])
        if not target[a]:
            o_time += span
            continue
        t_time += span
        t_turns.append((span, b - a + 1))
        gaps = start[a + 1:b + 1] - end[a:b]
        pauses.extend(float(g) for g in gaps if g >= PAUSE_MIN_S)
    n_t = sum(target)
    total = t_time + o_time
    return DocStats(
        speaking_time_s=t_time,
        n_words=n_t,
        n_segments=int(n_segments),
        words_per_minute=60.0 * n_t / t_time if t_time > 0 else 0.0,
        pause_count=len(pauses),
        pause_mean_s=float(np.mean(pauses)) if pauses else 0.0,
        pause_p90_s=float(np.percentile(pauses, 90)) if pauses else 0.0,
        turn_count=len(t_turns),
        turn_mean_s=float(np.mean([s for s, _ in t_turns])) if t_turns else 0.0,
        turn_mean_words=float(np.mean([k for _, k in t_turns])) if t_turns else 0.0,
        share_of_speech=t_time / total if total > 0 else 0.0,
        other_speaking_time_s=o_time,
        other_n_words=len(target) - n_t,
    )


def feature_vector(stats: DocStats) -> np.ndarray:
    """The model's side input: FEATURE_NAMES in order, log1p for counts and durations.
    Standardisation happens on the training fold (training preprocessing), not here."""
    d = stats.to_dict()
    return np.asarray([math.log1p(max(d[k], 0.0)) if k in _LOG_SCALED else d[k] for k in FEATURE_NAMES],
                      dtype=np.float32)
