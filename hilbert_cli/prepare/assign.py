"""Word -> speaker assignment by time overlap: an interval join, O((n + m) log m), not n x m.

Turns may overlap (pyannote); they are first flattened into disjoint pieces (where several
speakers talk at once, the shorter turn - the interjection - wins). Each word then looks only
at the pieces between searchsorted(ends, word start) and searchsorted(starts, word end):
it takes the speaker with the most overlap; a word overlapping no turn takes the speaker of
the nearest turn within `max_gap_s`, else `unknown`.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np

UNKNOWN = "UNKNOWN"


def exclusive(turns: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Disjoint pieces covering the union of `turns` (shortest active turn wins)."""
    turns = sorted((float(s), float(e), str(k)) for s, e, k in turns if e > s)
    if not turns:
        return []
    points = sorted({t[0] for t in turns} | {t[1] for t in turns})
    out: list[list] = []
    active: list[tuple[float, float, int, str]] = []  # (duration, end, index, speaker)
    i = 0
    for a, b in zip(points[:-1], points[1:]):
        while i < len(turns) and turns[i][0] <= a:
            s, e, k = turns[i]
            heapq.heappush(active, (e - s, e, i, k))
            i += 1
        while active and active[0][1] <= a:
            heapq.heappop(active)
        # lazily drop ended turns hidden under the heap top
        best = None
        while active:
            d, e, j, k = active[0]
            if e <= a:
                heapq.heappop(active)
                continue
            best = k
            break
        if best is None:
            continue
        if out and out[-1][2] == best and abs(out[-1][1] - a) < 1e-9:
            out[-1][1] = b
        else:
            out.append([a, b, best])
    return [(s, e, k) for s, e, k in out]


def assign_speakers(
    starts: np.ndarray,
    ends: np.ndarray,
    turns: Sequence[tuple[float, float, str]],
    *,
    max_gap_s: float = 1.0,
    unknown: str = UNKNOWN,
) -> list[str]:
    """Speaker label for each word [starts[i], ends[i]]."""
    starts = np.asarray(starts, dtype=float)
    ends = np.maximum(np.asarray(ends, dtype=float), starts)
    n = starts.size
    pieces = exclusive(turns)
    if n == 0:
        return []
    if not pieces:
        return [unknown] * n
    ps = np.array([p[0] for p in pieces])
    pe = np.array([p[1] for p in pieces])
    spk = [p[2] for p in pieces]
    lo = np.searchsorted(pe, starts, side="right")  # first piece ending after the word starts
    hi = np.searchsorted(ps, ends, side="left")  # pieces starting before the word ends
    out: list[str] = []
    for i in range(n):
        a, b = lo[i], hi[i]
        if b > a:
            if b - a == 1:
                out.append(spk[a])
                continue
            acc: dict[str, float] = {}
            for j in range(a, b):
                ov = min(pe[j], ends[i]) - max(ps[j], starts[i])
                acc[spk[j]] = acc.get(spk[j], 0.0) + max(ov, 0.0)
            out.append(max(acc.items(), key=lambda kv: kv[1])[0])
            continue
        # zero-length word on a boundary, or a word in a gap: nearest piece within max_gap_s
        best, gap = None, np.inf
        for j in (a, a - 1):  # on a tie, the turn that starts there
            if 0 <= j < len(pieces):
                g = max(ps[j] - ends[i], starts[i] - pe[j], 0.0)
                if g < gap:
                    best, gap = spk[j], g
        out.append(best if best is not None and gap <= max_gap_s else unknown)
    return out


def speech_time(turns: Sequence[tuple[float, float, str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for s, e, k in exclusive(turns):
        out[k] = out.get(k, 0.0) + (e - s)
    return out


def target_speakers(turns: Sequence[tuple[float, float, str]], choice: str) -> tuple[set[str] | None, str | None]:
    """(set of target labels or None for all, the label recorded as target_speaker).

    'all' -> every speaker; 'dominant' -> the speaker with the most speech (ties: first label);
    otherwise `choice` is a label that must occur in the recording. ('participant' needs the
    words: choose_target.)
    """
    targets, label, _ = choose_target(turns, choice)
    return targets, label


def choose_target(
    turns: Sequence[tuple[float, float, str]],
    choice: str,
    words: tuple[Sequence[float], Sequence[float], Sequence[str], Sequence[str]] | None = None,
    prompts: Sequence[str] = (),
) -> tuple[set[str] | None, str | None, dict | None]:
    """target_speakers plus 'participant' (the speaker who is not the interviewer, from the
    `words` = (starts, ends, texts, speakers) and the interview `prompts`; participant.py) and
    the evidence of that decision (None for the other choices)."""
    if choice == "all":
        return None, None, None
    times = speech_time(turns)
    if choice == "participant":
        from .participant import detect_participant, word_turns

        starts, ends, texts, speakers = words if words is not None else ((), (), (), ())
        wt = word_turns(starts, ends, texts, speakers, skip=frozenset({UNKNOWN}))
        best, evidence = detect_participant(wt, times, prompts)
        return (set() if best is None else {best}), best, evidence
    if choice == "dominant":
        if not times:
            return set(), None, None
        best = sorted(times.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return {best}, best, None
    if choice not in times:
        from ..errors import InputError

        found = ", ".join(sorted(times)) or "none"
        raise InputError(f"--speaker {choice}: no such speaker in this recording (speakers: {found})")
    return {choice}, choice, None
