"""Voice activity + speaker diarization behind one small interface (`Diarizer`).

Backends: `vad-cluster` (silero VAD + Resemblyzer + scikit-learn clustering; offline default),
`pyannote` (a pyannote.audio pipeline on bounded windows), `none` (voice activity only, one
speaker). `load_diarizer(options, device)` builds the chosen one; models load once. When
one speaker is all there can be (`--num-speakers 1` or `--diarization none`), every backend
is replaced by voice activity alone: no speaker model is loaded and nothing is clustered.
"""

from __future__ import annotations

from ..options import PrepareOptions
from .base import Diarization, Diarizer, Turn, merge_turns, union


def one_speaker(options: PrepareOptions) -> bool:
    """True when the options leave no speaker to find (`--num-speakers 1`, `--max-speakers 1`,
    `--diarization none`)."""
    return options.diarization == "none" or options.num_speakers == 1 or options.max_speakers == 1


def load_diarizer(options: PrepareOptions, device: str = "cpu") -> Diarizer:
    if one_speaker(options):
        from .vad_cluster import VadClusterDiarizer

        return VadClusterDiarizer(options, device=device)  # voice activity only
    if options.diarization == "pyannote":
        from .pyannote_backend import PyannoteDiarizer

        return PyannoteDiarizer(options, device=device)
    from .vad_cluster import VadClusterDiarizer

    return VadClusterDiarizer(options, device=device)


__all__ = ["Diarization", "Diarizer", "Turn", "load_diarizer", "merge_turns", "one_speaker", "union"]
