"""Emotion-shift segmentation of a prepare words table (see segmenter.py)."""

from __future__ import annotations

from .options import SegmentOptions, SignalWeights

__all__ = ["SegmentOptions", "SignalWeights", "Segmenter", "SEGMENTS_SCHEMA"]


def __getattr__(name):
    if name in {"Segmenter", "SEGMENTS_SCHEMA"}:
        from . import segmenter

        return getattr(segmenter, name)
    raise AttributeError(name)
