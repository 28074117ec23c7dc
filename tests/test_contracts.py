"""The contracts layer (hilbert_cli.contracts, docs/CONTRACTS.md): files written by hilbert 0.1 -
built here with pyarrow directly, with 0.1's key names - still read through the typed models, and
what the models write reads back the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hilbert_cli.contracts.base import TableMeta
from hilbert_cli.contracts.embed import SEGMENTS_SCHEMA, FeaturesMeta, VectorsMeta, features_schema
from hilbert_cli.contracts.failures import ERRORS_SCHEMA
from hilbert_cli.contracts.manifest import MANIFEST_SCHEMA
from hilbert_cli.contracts.model_dir import ModelDirConfig
from hilbert_cli.contracts.prepare import TURNS_SCHEMA, WORDS_SCHEMA, PrepareMeta
from hilbert_cli.contracts.scores import ScorePartMeta, scores_schema
from hilbert_cli.errors import InputError


def write_01(path: Path, table: pa.Table, meta: dict) -> Path:
    """A Parquet file exactly as hilbert 0.1 wrote it: one `hilbert` JSON key, no format_version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps({"tool": "hilbert", "tool_version": "0.1.0", **meta}, sort_keys=True, default=str)
    pq.write_table(table.replace_schema_metadata({b"hilbert": raw.encode()}), path, compression="zstd")
    return path


PREPARE_01 = {
    "stage": "prepare", "table": "words", "recording_id": "site1/a.wav", "source_path": "/data/site1/a.wav",
    "duration_s": 12.5, "input": {"sample_rate": 44100, "channels": 2, "codec": "pcm_s16le",
                                  "container_duration_s": 12.5},
    "options": {"asr_model": "tiny", "speaker": "longest"}, "config_hash": "p0123456789abcde",
    "models": {"asr": {"alias": "tiny", "revision": "r1"}}, "target_speaker": "SPEAKER_01",
    "speaker_choice": "longest", "participant_detection": None, "speakers": ["SPEAKER_00", "SPEAKER_01"],
    "text_source": {"kind": "asr"}, "language": "en", "diarization": {"backend": "vad-cluster"},
    "asr": {"language": "en"}, "timings_s": {"asr": 1.25}, "schema_version": 1,
}


def words_01() -> pa.Table:
    return pa.Table.from_pylist([
        {"recording_id": "site1/a.wav", "word_index": 0, "start_s": 0.5, "end_s": 0.9, "word": "hello",
         "probability": 0.9, "speaker": "SPEAKER_01", "is_target": True, "asr_segment": 0, "avg_logprob": -0.2,
         "no_speech_prob": 0.01, "compression_ratio": 1.1},
    ], schema=WORDS_SCHEMA)


def test_a_01_words_table_reads_typed_and_round_trips(tmp_path):
    path = write_01(tmp_path / "words.parquet", words_01(), PREPARE_01)
    meta = PrepareMeta.read(path)
    assert meta.format_version == 1  # 0.1's schema_version
    assert meta.recording_id == "site1/a.wav" and meta.duration_s == 12.5 and meta.table == "words"
    assert meta.options["asr_model"] == "tiny" and meta.speakers == ["SPEAKER_00", "SPEAKER_01"]
    # written again, a block keeps exactly its keys (schema_version under its new name)
    expected = {k: v for k, v in PREPARE_01.items() if k != "schema_version"}
    assert meta.to_metadata() == {**expected, "tool": "hilbert", "tool_version": "0.1.0", "format_version": 1}


def test_prepare_writes_what_it_reads_with_a_format_version(tmp_path):
    meta = PrepareMeta.current(**{k: v for k, v in PREPARE_01.items() if k not in ("schema_version", "table")})
    meta.for_table("turns").write_table(TURNS_SCHEMA.empty_table(), tmp_path / "t.parquet")
    back = PrepareMeta.read(tmp_path / "t.parquet")
    assert back.table == "turns" and back.format_version == PrepareMeta.FORMAT_VERSION
    assert back.model_dump(exclude={"table", "tool_version"}) == meta.model_dump(exclude={"table", "tool_version"})
    raw = json.loads(pq.read_schema(tmp_path / "t.parquet").metadata[b"hilbert"])
    assert raw["format_version"] == 1 and "schema_version" not in raw and raw["stage"] == "prepare"


@pytest.mark.parametrize("meta, audio", [
    ({"audio_model": {"alias": "hubLgFT", "dim": 4}}, "hubLgFT"),
    ({"models": {"audio": {"name": "legacyName", "dim": 4}}}, "legacyName"),
    ({"models": {"audio_encoder": {"repo": "org/repo", "dim": 4}}}, "org/repo"),
    ({"models": {"audio": "plainAlias"}}, "plainAlias"),
    ({"audio_model": {"alias": "wins"}, "models": {"audio": {"name": "loses"}}}, "wins"),
    ({}, None),
])
def test_01_encoder_key_names_read_as_one_typed_field(meta, audio):
    fm = FeaturesMeta.from_metadata({**meta, "text_model": {"name": "txt", "dim": 3}})
    assert fm.backbones(4, 3) == {"audio": audio, "text": "txt", "audio_dim": 4, "text_dim": 3}


def test_a_01_features_file_reads_with_its_nested_prepare_block(tmp_path):
    feats = pa.Table.from_pylist([{"recording_id": "site1/a.wav", "segment_index": 0,
                                   "audio_embedding": [0.0] * 4, "text_embedding": [1.0] * 3}],
                                 schema=features_schema(4, 3))
    meta = {"stage": "embed", "recording_id": "site1/a.wav", "duration_s": 12.5, "n_segments": 1,
            "config_hash": "e0", "audio_model": {"alias": "hubLgFT", "dim": 4, "repo": "x", "revision": "r"},
            "text_model": {"alias": "paraTinyBERT", "dim": 3}, "embed_options": {"audio": "hubLgFT"},
            "segment_key": "seg-0", "segments_source_hash": "s0", "segmentation": {"emotion": None},
            "prepare": PREPARE_01, "doc_stats": {"n_words": 1.0, "speaking_time_s": 0.4, "future_key": 7.0}}
    fm = FeaturesMeta.read(write_01(tmp_path / "f.parquet", feats, meta))
    assert fm.format_version == 1 and fm.n_segments == 1 and fm.audio_model.dim == 4
    assert fm.prepare.recording_id == "site1/a.wav" and fm.prepare.format_version == 1
    from hilbert_cli.embed.doc_stats import DocStats

    stats = DocStats.from_dict(fm.doc_stats)
    assert stats.n_words == 1 and stats.speaking_time_s == 0.4 and stats.turn_count == 0
    out = fm.to_metadata()
    assert out["prepare"]["options"] == PREPARE_01["options"] and "schema_version" not in out["prepare"]
    assert out["audio_model"] == meta["audio_model"] and out["doc_stats"] == meta["doc_stats"]
    assert FeaturesMeta.from_metadata({"stage": "embed"}).doc_stats is None  # 0.1 before doc_stats


def test_a_01_vector_cache_entry_is_reused(tmp_path):
    from hilbert_cli.embed import cache

    vecs = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = pa.table({"segment_index": pa.array([1, 0], pa.int32()), "embedding": cache.fixed_list(vecs, 3)})
    path = write_01(tmp_path / "v.parquet", t, {"stage": "embed/cache", "source_hash": "h", "dim": 3,
                                                "encoder": {"alias": "enc", "dim": 3}})
    got, enc = cache.load_vectors(path, "h", 2)
    np.testing.assert_array_equal(got, vecs[::-1])  # in segment_index order
    assert enc == {"alias": "enc", "dim": 3}
    assert cache.load_vectors(path, "other", 2) is None and cache.load_vectors(path, "h", 3) is None
    seg = write_01(tmp_path / "s.parquet", SEGMENTS_SCHEMA.empty_table(),
                   {"stage": "embed/segments", "source_hash": "sh", "recording_id": "a"})
    assert cache.load_segments(seg, "sh").schema.remove_metadata() == SEGMENTS_SCHEMA
    assert cache.load_segments(seg, "x") is None
    assert VectorsMeta.read(path).encoder.alias == "enc"


def test_a_01_score_part_errors_and_manifest_read(tmp_path):
    from hilbert_cli import batch, manifest
    from hilbert_cli.scoring.pipeline import part_is_done

    schema = scores_schema({"t": ["a", "b"]})
    part = write_01(tmp_path / "score" / "p.parquet", schema.empty_table(),
                    {"stage": "score", "config_hash": "c1", "recording_id": "a", "score_config": {}, "status": "ok"})
    assert part_is_done(part, "c1") and not part_is_done(part, "c2")
    assert ScorePartMeta.read(part).status == "ok"
    row = {"recording_id": "a.wav", "stage": "embed", "error_type": "InputError", "message": "a.wav: bad",
           "path": "/in/a.wav", "time_utc": "2026-01-01T00:00:00Z"}
    write_01(tmp_path / "errors" / "embed" / "a.wav.parquet", pa.Table.from_pylist([row], schema=ERRORS_SCHEMA),
             {"stage": "errors/embed"})
    assert batch.read_errors(tmp_path, "embed").to_pylist() == [row]
    mrow = {name: None for name in MANIFEST_SCHEMA.names} | {"recording_id": "a.wav", "stage": "prepare",
                                                             "status": "ok", "skipped": False, "shard": "0/1"}
    write_01(tmp_path / "manifest" / "prepare" / "part-0-of-1.parquet",
             pa.Table.from_pylist([mrow], schema=MANIFEST_SCHEMA),
             {"stage": "manifest/prepare", "shard": [0, 1], "time_utc": "2026-01-01T00:00:00Z"})
    assert manifest.read_manifest(tmp_path / "manifest" / "prepare").to_pylist() == [mrow]


def test_writers_stamp_the_format_version(tmp_path):
    from hilbert_cli import batch

    rec = batch.Recording("x.wav", tmp_path / "x.wav")
    batch.write_error(tmp_path, "prepare", rec, ValueError("broken"))
    raw = json.loads(pq.read_schema(batch.error_path(tmp_path, "prepare", "x.wav")).metadata[b"hilbert"])
    assert raw["stage"] == "errors/prepare" and raw["format_version"] == 1 and raw["tool"] == "hilbert"


def test_a_wrong_type_in_metadata_is_one_line_naming_the_file_and_key(tmp_path):
    path = write_01(tmp_path / "w.parquet", words_01(), {**PREPARE_01, "duration_s": "long"})
    with pytest.raises(InputError) as err:
        PrepareMeta.read(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "duration_s" in msg
    assert TableMeta.from_metadata(None).stage == ""  # no metadata: the defaults


CONFIG_01_KEYS = ["format", "format_version", "tool_version", "model_id", "run_name", "task", "variant",
                  "class_names", "label_map", "d_audio", "d_text", "backbones", "max_segments", "model_config",
                  "loss_config", "train_config", "epochs", "n_train", "cv", "features_metadata", "recipe",
                  "calibration", "weights_sha256"]


def test_a_01_model_config_reads_typed_and_keeps_its_key_order():
    cfg = {k: None for k in CONFIG_01_KEYS} | {
        "format": "hilbert-model", "format_version": 1, "tool_version": "0.1.0", "run_name": "r", "task": "t",
        "class_names": ["a", "b"], "label_map": {"a": 0, "b": 1}, "d_audio": 4, "d_text": 3,
        "backbones": {"audio": "x"}, "model_config": {"variant": "hilbert"},
        "features_metadata": {"models": {"audio": {"name": "old"}}, "embed_options": {}}}
    typed = ModelDirConfig.from_metadata(cfg)
    assert typed.model_config_ == {"variant": "hilbert"} and typed.class_names == ["a", "b"]
    assert typed.features.audio_model.alias == "old"
    assert list(typed.to_metadata()) == CONFIG_01_KEYS
    assert typed.to_metadata() == cfg


def test_a_model_config_with_a_mistyped_key_fails_at_load_in_one_line(tmp_path):
    from hilbert_cli.errors import ConfigError
    from hilbert_cli.training.checkpoint import _typed_config

    cfg = {"format": "hilbert-model", "format_version": 1, "task": "t", "class_names": ["a"],
           "features_metadata": {"n_segments": "many"}}
    with pytest.raises(ConfigError, match=r"config.json: features_metadata.n_segments: ") as err:
        _typed_config(tmp_path / "config.json", cfg)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"config.json: epochs: "):
        _typed_config(tmp_path / "config.json", {**cfg, "features_metadata": {}, "epochs": "x"})


def test_a_null_where_01_readers_took_a_default_reads_as_the_default(tmp_path):
    meta = PrepareMeta.from_metadata({"speakers": None, "options": None, "duration_s": None})
    assert meta.speakers == [] and meta.options == {} and meta.duration_s is None
    assert "speakers" not in meta.to_metadata() and meta.to_metadata()["duration_s"] is None
    cfg = ModelDirConfig.from_metadata({"features_metadata": None, "backbones": None, "task": "t"})
    assert cfg.features_metadata == {} and cfg.backbones == {} and cfg.features.prepare.options == {}
    assert FeaturesMeta.from_metadata({"prepare": None, "audio_model": None}).audio_model is None


def test_segments_of_an_earlier_segmenter_version_are_never_reused(monkeypatch):
    """Raising SEGMENTS_VERSION (a change in how segments are cut) moves the segment cache key,
    and FEATURES_VERSION moves embed's config hash: old segments, vectors and features are redone."""
    from hilbert_cli.embed import cache
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import config_hash

    opts = EmbedOptions()
    key, chash = cache.segment_key(opts.segment.model_dump()), config_hash(opts, "p")
    monkeypatch.setattr(cache, "SEGMENTS_VERSION", cache.SEGMENTS_VERSION - 1)
    assert cache.segment_key(opts.segment.model_dump()) != key
    import hilbert_cli.embed.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FEATURES_VERSION", pipeline.FEATURES_VERSION - 1)
    assert config_hash(opts, "p") != chash
