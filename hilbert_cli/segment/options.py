"""Segmentation options (part of EmbedOptions; every field changes the segments table)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SignalWeights(BaseModel):
    """Weight of each signal in the combined change score (a weighted mean of the signals present)."""

    model_config = ConfigDict(extra="forbid")

    sentiment: float = Field(1.0, ge=0)  # VADER compound
    polarity: float = Field(0.5, ge=0)  # TextBlob (Pattern lexicon) polarity
    subjectivity: float = Field(0.75, ge=0)  # TextBlob subjectivity
    emotion: float = Field(1.0, ge=0)  # emotion classifier distribution (when available)
    pitch: float = Field(0.5, ge=0)  # median F0 (torchaudio), semitones
    energy: float = Field(0.5, ge=0)  # RMS level, dB
    pause: float = Field(0.75, ge=0)  # silence before the unit


class SegmentOptions(BaseModel):
    """Emotion-shift segmentation: sentence units, per-unit signals, cuts where they change.

    Defaults aim at the paper's averages (about 17 words and 6.5 s per segment): the length
    prior pulls segments toward target_words / target_s; a shift cuts earlier, the max limits
    cut later passages that never shift.
    """

    model_config = ConfigDict(extra="forbid")

    speakers: Literal["target", "all"] = "target"  # segment the target speaker's words, or everyone's
    min_words: int = Field(6, ge=1)
    max_words: int = Field(32, ge=1)
    min_s: float = Field(2.0, ge=0)
    max_s: float = Field(12.0, gt=0)
    target_words: int = Field(17, ge=1)
    target_s: float = Field(6.5, gt=0)
    length_prior: float = Field(0.05, ge=0)  # cost of straying from the targets, per relative unit
    threshold: float = Field(0.2, ge=0, le=1)  # change score at which a cut is worth making
    context_words: int = Field(8, ge=1)  # words on each side compared at a boundary
    unit_pause_s: float = Field(0.5, ge=0)  # a pause this long ends a sentence unit
    hard_pause_s: float = Field(2.0, gt=0)  # a pause this long always cuts
    weights: SignalWeights = Field(default_factory=SignalWeights)
    emotion: str = "auto"  # "auto" (emoDistilRoBERTa when local), "off", or an alias / directory
    prosody: bool = True  # pitch + energy from the audio (needs the audio file)

    @model_validator(mode="after")
    def _check(self) -> "SegmentOptions":
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) > max_words ({self.max_words})")
        if self.min_s >= self.max_s:
            raise ValueError(f"min_s ({self.min_s}) >= max_s ({self.max_s})")
        return self
