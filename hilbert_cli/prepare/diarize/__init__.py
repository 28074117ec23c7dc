"""Voice activity + speaker diarization behind one small interface (`Diarizer`).

Backends: `vad-cluster` (silero VAD + CAM++ or Resemblyzer + scikit-learn clustering; offline default),
`pyannote` (a pyannote.audio pipeline on bounded windows), `none` (voice activity only, one
speaker). `load_diarizer(options, device)` builds the chosen one from the prepare options; each
backend takes only its own `DiarizationOptions` (and the `VadOptions` of its speech regions),
plus the stage's threads and decoding chunk; models load once. When
one speaker is all there can be (`--num-speakers 1` or `--diarization none`), every backend
is replaced by voice activity alone: no speaker model is loaded and nothing is clustered.
"""

from __future__ import annotations

from ..options import DiarizationOptions, PrepareOptions
from .base import Diarization, Diarizer, Turn, merge_turns, union


def one_speaker(options: DiarizationOptions | PrepareOptions) -> bool:
    """True when the options leave no speaker to find (`--num-speakers 1`, `--max-speakers 1`,
    `--diarization none`)."""
    d = options.diarization if isinstance(options, PrepareOptions) else options
    return d.one_speaker


def load_diarizer(options: PrepareOptions, device: str = "cpu") -> Diarizer:
    d = options.diarization
    run = {"device": device, "cpu_threads": options.cpu_threads, "chunk_s": options.chunk_s}
    if d.backend == "pyannote" and not d.one_speaker:
        from .pyannote_backend import PyannoteDiarizer

        return PyannoteDiarizer(d, **run)
    from .vad_cluster import VadClusterDiarizer

    return VadClusterDiarizer(d, options.vad, **run)  # with one speaker: voice activity only


__all__ = ["Diarization", "Diarizer", "Turn", "load_diarizer", "merge_turns", "one_speaker", "union"]
