"""CLAP baseline encoders (hilbert_cli/embed/clap.py) on a tiny random CLAP saved locally."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_compare import make_tiny_clap, tone


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    return make_tiny_clap(tmp_path_factory.mktemp("clap") / "clapLaion")


@pytest.fixture(scope="module")
def audio_enc(clap_dir):
    from hilbert_cli.embed.clap import ClapAudioEncoder

    return ClapAudioEncoder(clap_dir, "cpu")


@pytest.fixture(scope="module")
def text_enc(clap_dir):
    from hilbert_cli.embed.clap import ClapTextEncoder

    return ClapTextEncoder(clap_dir, "cpu")


def test_audio_protocol_shape_norm_and_batch_invariance(audio_enc):
    from hilbert_cli.embed.encoders import AudioEncoder

    assert isinstance(audio_enc, AudioEncoder)
    assert audio_enc.dim == 16
    clips = [tone(1.5, 220, seed=1), tone(3.0, 440, seed=2), tone(0.4, 880, seed=3)]
    batched = audio_enc.embed(clips)
    assert batched.shape == (3, 16) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([audio_enc.embed([c]) for c in clips])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # deterministic (CLAP's feature extractor flags a random clip as "longer": we never let it act)
    np.testing.assert_allclose(audio_enc.embed(clips), batched, atol=1e-6)
    # different audio -> different vectors
    assert not np.allclose(batched[0], batched[1], atol=1e-3)


def test_audio_long_and_empty_clips(audio_enc):
    long = tone(23.0, 300, seed=4)  # > 10 s window: cut into 3 windows, duration-weighted mean
    out = audio_enc.embed([long, np.zeros(0, dtype=np.float32)])
    assert out.shape == (2, 16)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert audio_enc.embed([]).shape == (0, 16)
    # the long clip equals the normalised weighted mean of its windows embedded one by one
    import numpy.linalg as la

    from hilbert_cli.embed.clap import _resample

    x48 = _resample(long, 16_000, audio_enc.sample_rate)
    wins = audio_enc._windows(x48)
    assert len(wins) == 3 and all(len(w) <= 10 * audio_enc.sample_rate for w, _ in wins)
    v = sum(audio_enc._forward([w])[0] * n for w, n in wins)
    np.testing.assert_allclose(out[0], v / la.norm(v), atol=1e-5)


def test_text_protocol_batch_invariance_and_truncation(text_enc):
    from hilbert_cli.embed.encoders import TextEncoder

    assert isinstance(text_enc, TextEncoder)
    texts = ["hello world", "she said she was worried about school", "", "park " * 200]
    batched = text_enc.embed(texts)
    assert batched.shape == (4, 16) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([text_enc.embed([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert text_enc.max_tokens == 64
    assert text_enc.embed([]).shape == (0, 16)


def test_factories_dispatch_clap_directory(clap_dir):
    from hilbert_cli.embed.clap import ClapAudioEncoder, ClapTextEncoder
    from hilbert_cli.embed.encoders import load_audio_encoder, load_text_encoder

    a = load_audio_encoder(str(clap_dir), device="cpu")
    t = load_text_encoder(str(clap_dir), device="cpu")
    assert isinstance(a, ClapAudioEncoder) and isinstance(t, ClapTextEncoder)
    # the directory is named like the registry alias: provenance says it is the CLAP baseline
    assert a.alias == "clapLaion" and t.alias == "clapLaion"
    assert a.provenance["arch"] == "clap"
    # audio and text land in the same joint space
    assert a.dim == t.dim


def test_registry_alias_resolves_from_models_dir(clap_dir, monkeypatch):
    from hilbert_cli.embed.encoders import load_audio_encoder

    monkeypatch.setenv("HILBERT_MODELS_DIR", str(clap_dir.parent))
    enc = load_audio_encoder("clapLaion", device="cpu")
    assert enc.alias == "clapLaion"
    assert enc.provenance.get("repo") == "laion/clap-htsat-unfused"


def test_bad_directories_give_one_line_errors(tmp_path):
    from hilbert_cli.embed.clap import ClapAudioEncoder, ClapTextEncoder
    from hilbert_cli.errors import HilbertError

    with pytest.raises(HilbertError, match="not found"):
        ClapAudioEncoder(tmp_path / "nope", "cpu")
    (tmp_path / "config.json").write_text('{"model_type": "hubert"}')
    with pytest.raises(HilbertError, match="expected 'clap'"):
        ClapTextEncoder(tmp_path, "cpu")
