"""Options of `hilbert prepare` (one pydantic model; stored in every output file's metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError

#: options that do not change the output (left out of the config hash, so a re-run with
#: another device or batch size still resumes)
RUNTIME_ONLY = frozenset({"device", "batch_size", "cpu_threads", "asr_workers", "show_progress"})


class PrepareOptions(BaseModel):
    """Everything that decides what `hilbert prepare` writes for a recording."""

    model_config = ConfigDict(extra="forbid")

    #: options that name a model to load (registry alias or local path): a trained model's
    #: recorded values are checked before scoring loads anything (registry.check_untrusted_reference)
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ("diarization_model", "speaker_encoder", "asr_model")

    # --- diarization / voice activity
    diarization: Literal["vad-cluster", "pyannote", "none"] = Field(
        "vad-cluster",
        description="vad-cluster: silero VAD + speaker encoder + clustering (offline default); "
        "pyannote: a pyannote.audio pipeline; none: one speaker, voice activity only",
    )
    diarization_model: Optional[str] = Field(
        None, description="pyannote pipeline: registry alias, hub id or local directory (default pyannote-community-1)"
    )
    speaker_encoder: str = Field("resemblyzer", description="speaker encoder of the vad-cluster backend")
    num_speakers: Optional[int] = Field(None, ge=1)
    min_speakers: Optional[int] = Field(None, ge=1)
    max_speakers: Optional[int] = Field(None, ge=1)
    cluster_threshold: float = Field(
        0.45, gt=0.0, lt=2.0, description="vad-cluster: cosine distance under which clusters merge "
        "(0.45: tuned on EmoDB speakers so one emotional voice stays one speaker; benchmarks/bench_diarization.py)"
    )
    min_speaker_share: float = Field(
        0.1, ge=0.0, lt=0.5, description="vad-cluster: a cluster with less of the speech joins its nearest "
        "neighbour when the speaker count is free (in one voice, such small clusters are moods, not people)"
    )
    spread_ratio: Optional[float] = Field(
        1.8, gt=1.0, description="vad-cluster: also split two clusters closer than cluster_threshold when their "
        "distance exceeds this many times their inner spread (two steady voices); None: absolute cut only"
    )
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_speech_s: float = Field(0.25, ge=0.0)
    min_silence_s: float = Field(0.3, ge=0.0)
    speech_pad_s: float = Field(0.1, ge=0.0)
    embed_window_s: float = Field(1.6, gt=0.2, description="vad-cluster: speaker-embedding window")
    embed_step_s: float = Field(0.8, gt=0.05, description="vad-cluster: hop between speaker-embedding windows")
    diarization_window_s: float = Field(
        600.0, ge=30.0, description="pyannote: longest stretch diarized at once; speakers are linked across windows"
    )
    link_threshold: float = Field(
        0.6, gt=0.0, lt=2.0, description="pyannote: cosine distance under which window speakers are the same person"
    )

    # --- target speaker
    speaker: str = Field(
        "all", description="all | dominant (most speech) | participant (not the interviewer, who asks; "
        "prepare/participant.py) | a speaker label: which speaker's words are is_target"
    )
    prompts: Optional[tuple[str, ...]] = Field(
        None, description="speaker participant: the interview prompts (the text, not a file path, so a trained "
        "model carries them): the speaker whose words match them best is the interviewer"
    )

    # --- ASR
    asr_model: str = Field("whisper-tiny.en", description="faster-whisper model: registry alias or CTranslate2 directory")
    device: str = "auto"
    compute_type: str = Field("auto", description="CTranslate2 compute type (auto: int8 on CPU, float16 on CUDA)")
    beam_size: int = Field(5, ge=1)
    language: Optional[str] = Field(None, description="language code, or None to detect (once per recording)")
    vad_filter: bool = Field(
        False, description="faster-whisper's own VAD inside each ASR window (off: the windows already are "
        "hilbert's speech regions, and running silero again there cost ~10 % of ASR time for the same words)"
    )
    temperature_fallback: bool = Field(
        True, description="re-decode at higher temperatures when a window looks like a failure (faster-whisper's default)"
    )
    condition_on_previous_text: bool = False
    asr_window_s: float = Field(30.0, gt=1.0, le=30.0, description="longest audio piece handed to Whisper at once")
    batch_size: int = Field(8, ge=1, description="ASR windows per batch (batched pipeline on GPU)")
    asr_workers: int = Field(
        0, ge=0, description="CPU: ASR windows transcribed at once, one thread each (0: one per usable core); "
        "the words are the same as one at a time"
    )
    cpu_threads: int = Field(
        0, ge=0, description="CPU threads for the models (CTranslate2 per ASR worker, torch); 0: one each on CPU "
        "for ASR and the vad-cluster speaker encoder (they run side by side), the libraries' defaults elsewhere. "
        "On a shared CPU, 1 can be much faster than oversubscribing"
    )

    # --- existing transcripts
    transcripts: Optional[str] = Field(
        None, description="directory of transcripts named like the recordings (.json/.srt/.vtt/.txt), used instead of ASR"
    )
    sidecars: bool = Field(True, description="use a transcript next to the audio file (same stem) instead of ASR")

    # --- decoding
    chunk_s: float = Field(30.0, gt=0.5, le=600.0, description="decoded samples held per streaming step")

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, v: str) -> str:
        v = (v or "all").strip()
        if not v:
            raise ValueError("speaker must be all, dominant or a label")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: Optional[tuple[str, ...]]) -> Optional[tuple[str, ...]]:
        if v is None:
            return None
        v = tuple(p.strip() for p in v if p and p.strip())
        if not v:
            raise ValueError("no prompts (every line is blank)")
        return v

    @field_validator("transcripts")
    @classmethod
    def _transcripts(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return None
        return str(Path(v).expanduser().resolve())

    @model_validator(mode="after")
    def _speakers(self) -> "PrepareOptions":
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) > max_speakers ({self.max_speakers})")
        if self.num_speakers and (
            (self.min_speakers and self.num_speakers < self.min_speakers)
            or (self.max_speakers and self.num_speakers > self.max_speakers)
        ):
            raise ValueError("num_speakers is outside min_speakers..max_speakers")
        if self.prompts is not None and self.speaker != "participant":
            raise ValueError("prompts are used only with speaker participant")
        if self.embed_step_s > self.embed_window_s:
            raise ValueError("embed_step_s must not exceed embed_window_s")
        return self

    @classmethod
    def build(cls, **kwargs) -> "PrepareOptions":
        """Like the constructor, but a bad value is a one-line ConfigError (for the CLI)."""
        from pydantic import ValidationError

        try:
            return cls(**{k: v for k, v in kwargs.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err.get("loc", ())) or "options"
            raise ConfigError(f"prepare option {loc}: {err.get('msg')}") from None

    def hashed(self) -> dict:
        """The options that change the output (input of the config hash)."""
        out = {k: v for k, v in self.model_dump(mode="json").items() if k not in RUNTIME_ONLY}
        if out.get("prompts") is None:
            out.pop("prompts", None)  # outputs made before the field existed keep their hash
        return out
