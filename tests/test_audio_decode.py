"""Streaming decode (hilbert_cli.audio): formats, resampling, downmixing, chunk edges, spans."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hilbert_cli.audio import SAMPLE_RATE, iter_spans, load_audio, probe, stream_chunks
from hilbert_cli.errors import InputError

HAVE_FFMPEG = shutil.which("ffmpeg") is not None


def _signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A chirp plus noise: every sample differs, so a lost or duplicated sample shows."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    base = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([base * (1.0 if c == 0 else 0.5) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def ref16k(tmp_path_factory) -> tuple[Path, np.ndarray]:
    d = tmp_path_factory.mktemp("dec")
    x = _signal(7.3, SAMPLE_RATE)[:, 0]
    p = d / "ref.wav"
    sf.write(p, x, SAMPLE_RATE, subtype="FLOAT")
    return p, x


def test_wav_16k_roundtrip_exact(ref16k):
    p, x = ref16k
    y = load_audio(p, highpass_hz=None)  # the exact decode; the DC high-pass is tested in test_hardening_audio
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == x.size
    np.testing.assert_allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("chunk_s", [0.01, 0.5, 1.0, 2.9999, 7.3, 100.0])
def test_chunk_edges_lose_and_duplicate_nothing(ref16k, chunk_s):
    p, x = ref16k
    chunks = list(stream_chunks(p, chunk_s, highpass_hz=None))
    size = max(1, int(round(chunk_s * SAMPLE_RATE)))
    pos = 0
    for c in chunks[:-1]:
        assert c.samples.size == size and c.start_sample == pos
        pos += c.samples.size
    assert chunks[-1].start_sample == pos
    y = np.concatenate([c.samples for c in chunks])
    assert y.size == x.size
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_iter_spans_exact_samples_overlap_and_past_end(ref16k):
    p, x = ref16k
    spans = [(0.0, 1.0), (0.5, 2.5), (2.5, 2.5), (6.9, 9.0), (1.0, 7.3), (8.0, 9.0), (3.33333, 3.5), (0.0, 0.0001)]
    got = dict(iter_spans(p, spans, chunk_s=0.7, highpass_hz=None))
    assert sorted(got) == list(range(len(spans)))
    for i, (s, e) in enumerate(spans):
        a, b = int(round(s * SAMPLE_RATE)), min(int(round(e * SAMPLE_RATE)), x.size)
        want = x[a:b] if b > a else x[:0]
        assert got[i].size == want.size, (i, got[i].size, want.size)
        np.testing.assert_allclose(got[i], want, atol=1e-6)


def test_iter_spans_order_is_by_end_and_memory_is_bounded(tmp_path):
    x = _signal(60.0, SAMPLE_RATE)[:, 0]
    p = tmp_path / "long.wav"
    sf.write(p, x, SAMPLE_RATE, subtype="PCM_16")
    spans = [(k * 1.0, k * 1.0 + 1.5) for k in range(58)]
    ends = []
    for i, clip in iter_spans(p, spans, chunk_s=2.0):
        ends.append(spans[i][1])
        assert clip.size == int(1.5 * SAMPLE_RATE)
    assert ends == sorted(ends) and len(ends) == 58


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_pitch(tmp_path, rate):
    t = np.arange(int(3.0 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    p = tmp_path / f"tone_{rate}.wav"
    sf.write(p, tone, rate, subtype="PCM_16")
    y = load_audio(p)
    assert abs(y.size - 3.0 * SAMPLE_RATE) <= 32
    spec = np.abs(np.fft.rfft(y[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + SAMPLE_RATE]))
    peak_hz = np.argmax(spec) * SAMPLE_RATE / SAMPLE_RATE  # 1 s window -> 1 Hz bins
    assert abs(peak_hz - 440) <= 2
    assert 0.3 < np.abs(y[1000:-1000]).max() < 0.7
    info = probe(p)
    assert info.sample_rate == rate and info.channels == 1 and abs(info.duration_s - 3.0) < 0.01


def test_six_channel_48k_downmix(tmp_path):
    rate, n = 48000, 48000 * 2
    t = np.arange(n) / rate
    data = np.zeros((n, 6), dtype=np.float32)
    data[:, 0] = 0.4 * np.sin(2 * np.pi * 300 * t)  # front left only
    p = tmp_path / "six.wav"
    sf.write(p, data, rate, subtype="PCM_24")
    info = probe(p)
    assert info.channels == 6 and info.sample_rate == rate
    y = load_audio(p)
    assert abs(y.size - 2 * SAMPLE_RATE) <= 32
    assert np.abs(y).max() > 0.05  # the one live channel survives the downmix
    spec = np.abs(np.fft.rfft(y[:SAMPLE_RATE]))
    assert abs(np.argmax(spec) - 300) <= 2


def test_stereo_downmix_is_mean(tmp_path):
    x = _signal(2.0, SAMPLE_RATE, channels=2)
    p = tmp_path / "st.wav"
    sf.write(p, x, SAMPLE_RATE, subtype="FLOAT")
    y = load_audio(p, highpass_hz=None)
    np.testing.assert_allclose(y, x.mean(axis=1), atol=2e-3)


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT", "DOUBLE", "PCM_U8", "PCM_32"])
def test_wav_sample_formats(tmp_path, subtype):
    x = _signal(1.5, SAMPLE_RATE)[:, 0]
    p = tmp_path / f"f_{subtype}.wav"
    sf.write(p, x, SAMPLE_RATE, subtype=subtype)
    y = load_audio(p, highpass_hz=None)
    assert y.size == x.size
    tol = 1e-2 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(y, x, atol=tol)


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_libsndfile_formats(tmp_path, fmt, subtype):
    x = _signal(3.0, 44100, channels=2)
    p = tmp_path / f"a.{fmt.lower()}"
    sf.write(p, x, 44100, format=fmt, subtype=subtype)
    y = load_audio(p)
    assert abs(y.size - 3.0 * SAMPLE_RATE) <= 64
    assert np.abs(y).max() > 0.1


FFMPEG_FORMATS = {
    "a.mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "a.m4a": ["-c:a", "aac", "-b:a", "64k"],
    "a.aac": ["-c:a", "aac", "-b:a", "64k"],
    "a.opus": ["-c:a", "libopus", "-b:a", "32k"],
    "a.ogg": ["-c:a", "libopus", "-b:a", "32k"],
    "a.webm": ["-c:a", "libopus", "-b:a", "32k"],
    "a.mp4": ["-c:a", "aac", "-b:a", "64k"],
    "a.flac": ["-c:a", "flac"],
}


@pytest.mark.skipif(not HAVE_FFMPEG, reason="needs the ffmpeg command to make compressed test files")
@pytest.mark.parametrize("name", sorted(FFMPEG_FORMATS))
def test_compressed_formats(tmp_path, name):
    src = tmp_path / "src.wav"
    sf.write(src, _signal(4.0, 44100, channels=2), 44100, subtype="PCM_16")
    out = tmp_path / name
    proc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *FFMPEG_FORMATS[name], str(out)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"ffmpeg cannot write {name}: {proc.stderr.decode()[:200]}")
    y = load_audio(out)
    assert abs(y.size / SAMPLE_RATE - 4.0) < 0.1, y.size / SAMPLE_RATE  # encoder priming/padding only
    assert np.abs(y).max() > 0.1
    assert probe(out).codec


def test_video_container_with_audio_track(tmp_path):
    if not HAVE_FFMPEG:
        pytest.skip("needs ffmpeg")
    out = tmp_path / "v.mp4"
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5", "-f", "lavfi",
         "-i", "sine=frequency=500:sample_rate=48000", "-t", "2", "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(out)],
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.skip("ffmpeg cannot write a test video")
    y = load_audio(out)
    assert abs(y.size / SAMPLE_RATE - 2.0) < 0.15
    assert abs(np.argmax(np.abs(np.fft.rfft(y[4000:4000 + SAMPLE_RATE]))) - 500) <= 3


def test_bad_files_raise_one_line_input_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n" * 50)
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    missing = tmp_path / "missing.wav"
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "nowhere.wav")
    for p, fragment in [(empty, "empty file"), (text, "cannot decode"), (zero, "zero-length"),
                        (missing, "no such file"), (dangling, "no such file")]:
        with pytest.raises(InputError) as ei:
            load_audio(p)
        msg = str(ei.value)
        assert fragment in msg and "\n" not in msg and str(p.name) in msg


def test_truncated_wav_decodes_what_is_there(tmp_path):
    x = _signal(3.0, SAMPLE_RATE)[:, 0]
    p = tmp_path / "full.wav"
    sf.write(p, x, SAMPLE_RATE, subtype="PCM_16")
    raw = p.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[: len(raw) // 2])  # header still claims 3 s
    y = load_audio(cut)
    assert 1.3 * SAMPLE_RATE < y.size < 1.7 * SAMPLE_RATE


def test_truncated_mp3_rows_or_one_line_error(tmp_path):
    if not HAVE_FFMPEG:
        pytest.skip("needs ffmpeg")
    src = tmp_path / "s.wav"
    sf.write(src, _signal(4.0, SAMPLE_RATE)[:, 0], SAMPLE_RATE)
    mp3 = tmp_path / "s.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame", str(mp3)], check=True)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 3 + 7])
    try:
        y = load_audio(cut)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert 0.5 * SAMPLE_RATE < y.size < 2.5 * SAMPLE_RATE


def test_unicode_and_spaces_in_names(tmp_path):
    p = tmp_path / "dossier é" / "entretien n°1 ü.wav"
    p.parent.mkdir()
    sf.write(p, _signal(1.0, SAMPLE_RATE)[:, 0], SAMPLE_RATE)
    assert load_audio(p).size == SAMPLE_RATE
