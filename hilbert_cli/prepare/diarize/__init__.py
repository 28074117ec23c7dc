"""Voice activity + speaker diarization behind one small interface (`Diarizer`).

Backends: `vad-cluster` (silero VAD + Resemblyzer + scikit-learn clustering; offline default),
`pyannote` (a pyannote.audio pipeline on bounded windows), `none` (voice activity only, one
speaker). `load_diarizer(options, device)` builds the chosen one; models load once.
"""

from __future__ import annotations

from ..options import PrepareOptions
from .base import Diarization, Diarizer, Turn, merge_turns, union


def load_diarizer(options: PrepareOptions, device: str = "cpu") -> Diarizer:
    if options.diarization == "pyannote":
        from .pyannote_backend import PyannoteDiarizer

        return PyannoteDiarizer(options, device=device)
    from .vad_cluster import VadClusterDiarizer

    return VadClusterDiarizer(options, device=device)


__all__ = ["Diarization", "Diarizer", "Turn", "load_diarizer", "merge_turns", "union"]
