"""`hilbert embed`: emotion-shift segments -> frozen audio and text features (Parquet).

Public API (docs/ARCHITECTURE.md, "Stages"): EmbedOptions, Embedder, EmbeddedRecording, embed_work_dir;
encoders in hilbert_cli.embed.encoders. Attributes load lazily so importing the package
stays cheap (no torch until an encoder is built).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmbedOptions", "Embedder", "EmbeddedRecording", "embed_work_dir"]


def __getattr__(name: str) -> Any:
    if name == "EmbedOptions":
        from .options import EmbedOptions

        return EmbedOptions
    if name in {"Embedder", "EmbeddedRecording", "embed_work_dir"}:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
