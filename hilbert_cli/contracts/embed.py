"""What embed writes: the segments table, the per-encoder vector cache and the features table
(docs/CONTRACTS.md, "Segments table", "Vector cache", "Features table").
"""

from __future__ import annotations

from typing import Any, Optional

import pyarrow as pa
from pydantic import model_validator

from .base import Lenient, TableMeta
from .prepare import PrepareMeta

SEGMENTS_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("segment_index", pa.int32()),
        ("speaker", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("text", pa.string()),
        ("n_words", pa.int32()),
        ("first_word", pa.int32()),  # word_index of the first word (prepare words table)
        ("last_word", pa.int32()),  # word_index of the last word (inclusive)
        ("cut_reason", pa.string()),  # why this segment starts: start|speaker|turn|pause|shift|max_words|max_s|length
        ("change_score", pa.float32()),  # combined change score at its start (null for the first)
        ("d_sentiment", pa.float32()),
        ("d_polarity", pa.float32()),
        ("d_subjectivity", pa.float32()),
        ("d_emotion", pa.float32()),
        ("d_pitch", pa.float32()),
        ("d_energy", pa.float32()),
        ("pause_s", pa.float32()),  # silence before its first word
        ("sentiment", pa.float32()),  # word-weighted mean VADER compound
        ("polarity", pa.float32()),
        ("subjectivity", pa.float32()),
        ("emotion", pa.string()),  # top emotion label (null without a classifier)
        ("emotion_score", pa.float32()),
        ("pitch_hz", pa.float32()),  # median F0 (null without audio / unvoiced)
        ("energy_db", pa.float32()),
    ]
)

#: how segments are cut, beyond their options; 2: pitch by librosa's YIN (was a hand-written
#: autocorrelation). Part of the segment cache key (embed/cache.py: segment_key), so segments
#: and vectors cached by an earlier version are recomputed, never mixed with new ones
SEGMENTS_VERSION = 2

#: what a features file holds; 2: the `doc_stats` metadata; 3: segments of SEGMENTS_VERSION 2.
#: Part of embed's config hash, so features written before are rewritten, never reused
FEATURES_VERSION = 3


def vectors_schema(dim: int) -> pa.Schema:
    """One encoder's vectors of one recording's segments (the vector cache)."""
    return pa.schema([("segment_index", pa.int32()), ("embedding", pa.list_(pa.float32(), dim))])


def features_schema(d_a: int, d_t: int) -> pa.Schema:
    return pa.schema([
        ("recording_id", pa.string()),
        ("segment_index", pa.int32()),
        ("audio_embedding", pa.list_(pa.float32(), d_a)),
        ("text_embedding", pa.list_(pa.float32(), d_t)),
    ])


class SegmentsMeta(TableMeta):
    stage: str = "embed/segments"
    #: hash of the prepare config_hash and seg_key: the entry is reused only for those words
    source_hash: Optional[str] = None
    recording_id: Optional[str] = None
    segment_options: dict[str, Any] = {}
    signals: Optional[dict[str, Any]] = None
    prepare_config_hash: Optional[str] = None
    #: the audio file the entry was made from (absent in 0.1 entries, which match any)
    source_path: Optional[str] = None


class EncoderInfo(Lenient):
    """An encoder's provenance: alias, dim, repo, revision, options (a joined `a+b` one: its parts).

    0.1 files may name the encoder by ``name`` or ``repo`` instead of ``alias``, or by a plain
    string; all read as `alias`."""

    alias: Optional[str] = None
    dim: Optional[int] = None
    repo: Optional[str] = None
    revision: Optional[str] = None
    options: Optional[dict[str, Any]] = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return {"alias": raw}
        if isinstance(raw, dict) and not raw.get("alias") and (raw.get("name") or raw.get("repo")):
            return {**raw, "alias": raw.get("name") or raw.get("repo")}
        return raw

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class VectorsMeta(TableMeta):
    stage: str = "embed/cache"
    #: prepare config_hash, seg_key and the segment count: a stale entry is recomputed
    source_hash: Optional[str] = None
    dim: int = 0
    encoder: EncoderInfo = EncoderInfo()
    #: the audio file the entry was made from (absent in 0.1 entries, which match any)
    source_path: Optional[str] = None


class FeaturesMeta(TableMeta):
    """What embed records about one recording; `hilbert train` copies it into config.json
    (``features_metadata``) and `hilbert score` rebuilds the stages from it.

    0.1 files (and hand-made ones) may name the encoders under ``models.audio`` /
    ``models.audio_encoder`` (``text``, ``text_encoder``) instead of ``audio_model`` /
    ``text_model``: they read as the latter."""

    stage: str = "embed"
    recording_id: Optional[str] = None
    duration_s: Optional[float] = None
    n_segments: Optional[int] = None
    config_hash: Optional[str] = None
    audio_model: Optional[EncoderInfo] = None
    text_model: Optional[EncoderInfo] = None
    embed_options: dict[str, Any] = {}
    segment_key: Optional[str] = None
    segments_source_hash: Optional[str] = None
    segmentation: Optional[dict[str, Any]] = None
    prepare: PrepareMeta = PrepareMeta()
    doc_stats: Optional[dict[str, float]] = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_models(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        models = raw.get("models") if isinstance(raw.get("models"), dict) else {}
        out = dict(raw)
        for side in ("audio", "text"):
            if not out.get(f"{side}_model"):
                found = models.get(side) or models.get(f"{side}_encoder")
                if found:
                    out[f"{side}_model"] = found
        return out

    def backbones(self, d_audio: int, d_text: int) -> dict[str, Any]:
        """The ``backbones`` entry of a model's config.json: encoder aliases and widths."""
        return {"audio": self.audio_model.alias if self.audio_model else None,
                "text": self.text_model.alias if self.text_model else None,
                "audio_dim": d_audio, "text_dim": d_text}