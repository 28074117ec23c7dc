"""The diarization interface every backend implements, and helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

Turn = tuple[float, float, str]  # (start_s, end_s, speaker)


@dataclass
class Diarization:
    """What a backend returns for one recording."""

    turns: list[Turn]  # sorted by start; may overlap (pyannote), never inside each other's silence
    speech: list[tuple[float, float]]  # voice-activity regions, sorted, disjoint
    duration_s: float  # decoded length of the recording
    info: dict = field(default_factory=dict)  # backend facts for the metadata (n windows, ...)
    vad_probs: np.ndarray | None = field(default=None, repr=False)  # silero frame probabilities, if run

    @property
    def speakers(self) -> list[str]:
        return sorted({t[2] for t in self.turns})


class Diarizer(Protocol):
    name: str

    def diarize(self, path: str | Path) -> Diarization: ...

    def provenance(self) -> dict: ...

    def close(self) -> None: ...


def merge_turns(turns: Sequence[Turn], max_gap_s: float = 0.0) -> list[Turn]:
    """Join consecutive turns of the same speaker separated by at most `max_gap_s`."""
    out: list[list] = []
    for s, e, spk in sorted(turns):
        if out and out[-1][2] == spk and s - out[-1][1] <= max_gap_s:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, spk])
    return [(float(s), float(e), str(k)) for s, e, k in out]


def union(intervals: Sequence[tuple[float, float]], max_gap_s: float = 0.0) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s - out[-1][1] <= max_gap_s:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(float(s), float(e)) for s, e in out]


def relabel_by_first_appearance(labels: np.ndarray, prefix: str = "SPEAKER_") -> list[str]:
    """Integer cluster ids -> SPEAKER_00, SPEAKER_01, ... numbered by first appearance."""
    mapping: dict[int, str] = {}
    out = []
    for x in labels.tolist():
        if x not in mapping:
            mapping[x] = f"{prefix}{len(mapping):02d}"
        out.append(mapping[x])
    return out


class torch_threads:
    """Temporarily set torch's CPU thread count (0: leave it as it is).

    On a shared or oversubscribed CPU, fewer threads can be several times faster (the
    OpenMP workers otherwise spin against each other); `--cpu-threads` sets it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.old = None

    def __enter__(self):
        import torch

        if self.n:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        if self.old is not None:
            torch.set_num_threads(self.old)
