"""Decoder hardening (issue 12): level-preserving downmix of every layout, DC offset removed.

The test audio is a synthetic voiced, speech-like signal (harmonics of a moving pitch, shaped by
three formants, in syllables and pauses), written with PyAV in named layouts (mono, stereo, 5.1,
7.1, as a camera or a film export writes them) and with soundfile as plain N-channel WAV.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from hilbert_cli.audio import SAMPLE_RATE, iter_spans, load_audio, stream_chunks
from tests.fixtures_prepare import requires_espeak, synth_speech

LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


def _speechlike(seconds: float, rate: int, seed: int = 0, peak: float = 0.7) -> np.ndarray:
    """Voiced syllables: harmonics of a 110-190 Hz pitch under formants at 700/1200/2600 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t) + 5 * rng.standard_normal(t.size).cumsum() / np.sqrt(t.size)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros_like(t)
    for k in range(1, 25):
        fk = k * f0
        gain = sum(a / (1 + ((fk - fc) / bw) ** 2) for fc, bw, a in ((700, 130, 1.0), (1200, 150, 0.6), (2600, 250, 0.3)))
        x += gain * np.sin(k * phase)
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.4 * t) > -0.5)
    x = x * envelope + 0.002 * rng.standard_normal(t.size)
    return (peak * x / np.abs(x).max()).astype(np.float32)


def _write_layout(path: Path, data: np.ndarray, rate: int, layout: str) -> Path:
    """float32 WAV in a named FFmpeg channel layout (the channel mask is in the file)."""
    with av.open(str(path), "w") as c:
        st = c.add_stream("pcm_f32le", rate=rate, layout=layout)
        for i in range(0, data.shape[0], 4800):
            block = np.ascontiguousarray(data[i : i + 4800], dtype=np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def speech48k() -> np.ndarray:
    return _speechlike(2.5, 48000)


@pytest.fixture(scope="module")
def mono_decode(tmp_path_factory, speech48k) -> np.ndarray:
    p = tmp_path_factory.mktemp("mono") / "mono.wav"
    return load_audio(_write_layout(p, speech48k[:, None], 48000, "mono"))


def test_every_layout_decodes_as_the_mono_original(tmp_path, speech48k, mono_decode):
    """The same speech in every channel decodes to the mono decode, within ±1, for 1/2/6/8
    channels, in named layouts and as plain N-channel WAV (no layout in the file)."""
    assert np.abs(mono_decode).max() < 1.0
    for n, layout in LAYOUTS.items():
        data = np.tile(speech48k[:, None], (1, n))
        named = _write_layout(tmp_path / f"named_{n}.wav", data, 48000, layout)
        plain = tmp_path / f"plain_{n}.wav"
        sf.write(plain, data, 48000, subtype="FLOAT")
        for p in (named, plain):
            y = load_audio(p)
            assert y.size == mono_decode.size, (p.name, y.size, mono_decode.size)
            assert np.abs(y).max() <= 1.0, (p.name, float(np.abs(y).max()))
            np.testing.assert_allclose(y, mono_decode, atol=1e-5, err_msg=p.name)


def test_speech_in_one_channel_decodes_at_one_nth_of_its_level(tmp_path, speech48k, mono_decode):
    """Documented behaviour: the downmix is the plain channel mean, so no channel is dropped
    (FFmpeg's own 5.1 downmix drops LFE and weights the others) and speech present in only
    one of n channels decodes at 1/n of its level, whichever channel carries it."""
    for n in (2, 6, 8):
        for ch in range(n):
            data = np.zeros((speech48k.size, n), np.float32)
            data[:, ch] = speech48k
            y = load_audio(_write_layout(tmp_path / f"one_{n}_{ch}.wav", data, 48000, LAYOUTS[n]))
            np.testing.assert_allclose(y, mono_decode / n, atol=1e-5, err_msg=f"{LAYOUTS[n]} channel {ch}")


def _write16k(path: Path, x: np.ndarray, subtype: str = "FLOAT") -> Path:
    sf.write(path, x, SAMPLE_RATE, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def speech16k() -> np.ndarray:
    return _speechlike(4.0, SAMPLE_RATE, seed=1, peak=0.5)


def test_dc_offset_is_removed_whatever_the_chunk_size(tmp_path, speech16k):
    """x + 0.2 decodes as x does, and the chunk size (or cutting spans) changes no sample."""
    clean = load_audio(_write16k(tmp_path / "clean.wav", speech16k))
    offset = _write16k(tmp_path / "offset.wav", speech16k + 0.2)
    whole = load_audio(offset)
    assert abs(float(whole.mean())) < 1e-3
    np.testing.assert_allclose(whole, clean, atol=1e-4)
    for chunk_s in (0.01, 0.37, 1.0, 2.9999, 100.0):
        y = np.concatenate([c.samples for c in stream_chunks(offset, chunk_s)])
        assert np.array_equal(y, whole), chunk_s
    spans = [(0.0, 1.0), (0.5, 2.5), (3.3, 3.9), (1.0, 4.0)]
    for i, clip in iter_spans(offset, spans, chunk_s=0.7):
        a, b = (int(round(v * SAMPLE_RATE)) for v in spans[i])
        assert np.array_equal(clip, whole[a:b]), spans[i]


def test_dc_offset_appearing_mid_file_settles_and_pcm_stereo_48k(tmp_path):
    """A 0.2 offset that starts at 1.5 s is gone 0.15 s later (a high-pass, not a mean taken
    once); the same holds for 16-bit stereo at 48 kHz, through the resampler."""
    x48 = _speechlike(3.0, 48000, seed=2, peak=0.5)
    step = np.where(np.arange(x48.size) >= int(1.5 * 48000), 0.2, 0.0).astype(np.float32)
    clean = tmp_path / "clean48.wav"
    sf.write(clean, np.stack([x48, 0.8 * x48], axis=1), 48000, subtype="PCM_16")
    stepped = tmp_path / "step48.wav"
    sf.write(stepped, np.stack([x48 + step, 0.8 * x48 + step], axis=1), 48000, subtype="PCM_16")
    a, b = load_audio(clean), load_audio(stepped)
    assert a.size == b.size
    settled = int(1.65 * SAMPLE_RATE)
    np.testing.assert_allclose(b[:int(1.5 * SAMPLE_RATE) - 64], a[:int(1.5 * SAMPLE_RATE) - 64], atol=1e-4)
    np.testing.assert_allclose(b[settled:], a[settled:], atol=1e-3)


@requires_espeak
def test_vad_probabilities_ignore_a_dc_offset(tmp_path):
    """The issue's symptom: Silero VAD (the prepare stage's) on espeak-ng speech + 0.2 moved
    frame probabilities by up to 0.8; through the decoder they now match the clean file's."""
    from hilbert_cli.prepare.diarize.vad import SileroVad

    raw = synth_speech("We talked about school, and then about the weekend.", tmp_path / "raw.wav")
    x, rate = sf.read(raw, dtype="float32")
    silence = np.zeros(rate // 2, np.float32)
    x = np.concatenate([silence, 0.5 * x / np.abs(x).max(), silence])
    clean = _write16k(tmp_path / "clean.wav", x)
    offset = _write16k(tmp_path / "offset.wav", x + 0.2)
    vad = SileroVad()
    a, n_a = vad.file_probabilities(clean)
    b, n_b = vad.file_probabilities(offset)
    assert n_a == n_b and (a > 0.5).sum() > 20  # speech is found at all
    assert np.abs(a - b).max() < 1e-3
