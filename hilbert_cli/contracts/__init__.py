"""The contracts between stages: each table's Arrow schema and its typed metadata.

Stages meet only through files (docs/CONTRACTS.md, the truth these modules implement): every
table's columns (`*_SCHEMA`, `*_schema()`) and the metadata model of its ``hilbert`` key
(`TableMeta` subclasses, with `from_metadata` / `to_metadata` / `read` / `write_table` and a
`format_version`) live here, one module per table or small group, built on parquet_io's one
atomic writer. Files of hilbert 0.1 read through the same models (legacy key names included).
"""

from .base import TableMeta
from .embed import (FEATURES_VERSION, SEGMENTS_SCHEMA, EncoderInfo, FeaturesMeta, SegmentsMeta, VectorsMeta,
                    features_schema, vectors_schema)
from .failures import ERRORS_SCHEMA, ErrorsMeta
from .manifest import MANIFEST_SCHEMA, ManifestMeta
from .model_dir import ModelDirConfig
from .prepare import PREPARE_FORMAT_VERSION, TURNS_SCHEMA, WORDS_SCHEMA, PrepareMeta
from .scores import ScorePartMeta, ScoresMeta, scores_schema

__all__ = [
    "ERRORS_SCHEMA", "FEATURES_VERSION", "MANIFEST_SCHEMA", "PREPARE_FORMAT_VERSION", "SEGMENTS_SCHEMA",
    "TURNS_SCHEMA", "WORDS_SCHEMA", "EncoderInfo", "ErrorsMeta", "FeaturesMeta", "ManifestMeta", "ModelDirConfig",
    "PrepareMeta", "ScorePartMeta", "ScoresMeta", "SegmentsMeta", "TableMeta", "VectorsMeta", "features_schema",
    "scores_schema", "vectors_schema",
]
