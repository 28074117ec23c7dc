"""`hilbert prepare`: streaming decode, voice activity + diarization, ASR or existing
transcripts, word -> speaker assignment; per-recording words and turns tables (docs/CONTRACTS.md)."""

from .options import PrepareOptions
from .pipeline import (
    TURNS_SCHEMA,
    WORDS_SCHEMA,
    PreparedRecording,
    Preparer,
    config_hash,
    turns_path,
    words_path,
)
from .stage import PrepareStage, prepare_recordings

__all__ = [
    "PrepareOptions",
    "PrepareStage",
    "PreparedRecording",
    "Preparer",
    "TURNS_SCHEMA",
    "WORDS_SCHEMA",
    "config_hash",
    "prepare_recordings",
    "turns_path",
    "words_path",
]
