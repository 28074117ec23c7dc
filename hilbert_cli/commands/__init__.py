"""One module per CLI command group; each exposes `register(app)`."""

from __future__ import annotations

from pathlib import Path


def check_transcripts_dir(transcripts: Path | None) -> None:
    """--transcripts must name a directory: a typo must not silently fall back to ASR."""
    if transcripts is not None and not transcripts.is_dir():
        from ..errors import ConfigError

        what = "not a directory" if transcripts.exists() else "no such directory"
        raise ConfigError(f"--transcripts {transcripts}: {what}")
