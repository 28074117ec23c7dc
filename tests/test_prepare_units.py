"""Unit tests of the prepare stage's pieces: assignment, transcripts, VAD streaming, windows, clustering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hilbert_cli.errors import InputError
from hilbert_cli.prepare.asr import asr_windows
from hilbert_cli.prepare.assign import UNKNOWN, assign_speakers, exclusive, speech_time, target_speakers
from hilbert_cli.prepare.options import PrepareOptions
from hilbert_cli.prepare.transcripts import find_transcript, read_transcript, transcript_words


# ------------------------------------------------------------------ word -> speaker


def _brute(starts, ends, pieces, max_gap):
    out = []
    for s, e in zip(starts, ends):
        acc = {}
        for a, b, k in pieces:
            ov = min(b, e) - max(a, s)
            if ov > 0:
                acc[k] = acc.get(k, 0) + ov
        if acc:
            out.append(max(acc.items(), key=lambda kv: kv[1])[0])
            continue
        best, gap = None, np.inf
        for a, b, k in pieces:
            g = max(a - e, s - b, 0.0)
            if g < gap:
                best, gap = k, g
        out.append(best if best is not None and gap <= max_gap else UNKNOWN)
    return out


def test_assign_matches_brute_force_on_random_disjoint_turns():
    rng = np.random.default_rng(1)
    t, turns = 0.0, []
    for _ in range(300):
        t += rng.uniform(0.0, 2.0)
        d = rng.uniform(0.2, 6.0)
        turns.append((t, t + d, f"S{rng.integers(3)}"))
        t += d
    starts = np.sort(rng.uniform(0, t + 5, 2000))
    ends = starts + rng.uniform(0.0, 1.5, starts.size)
    got = assign_speakers(starts, ends, turns, max_gap_s=1.0)
    want = _brute(starts, ends, exclusive(turns), 1.0)
    # ties in overlap can go either way; everything else must agree
    agree = np.mean([g == w for g, w in zip(got, want)])
    assert agree > 0.995


def test_assign_is_not_quadratic():
    import time

    n = 200_000
    turns = [(i * 2.0, i * 2.0 + 1.8, f"S{i % 2}") for i in range(n // 4)]
    starts = np.arange(n) * 0.5
    ends = starts + 0.3
    t = time.perf_counter()
    out = assign_speakers(starts, ends, turns)
    assert len(out) == n
    assert time.perf_counter() - t < 20  # a quadratic join would take hours


def test_exclusive_overlaps_shorter_turn_wins_and_covers_union():
    turns = [(0.0, 10.0, "A"), (3.0, 4.0, "B"), (9.0, 12.0, "C")]
    ex = exclusive(turns)
    assert ex == [(0.0, 3.0, "A"), (3.0, 4.0, "B"), (4.0, 9.0, "A"), (9.0, 12.0, "C")]
    st = speech_time(turns)
    assert st == {"A": 8.0, "B": 1.0, "C": 3.0}


def test_assign_edge_cases():
    turns = [(1.0, 2.0, "A"), (2.0, 3.0, "B")]
    got = assign_speakers(np.array([0.0, 1.5, 1.9, 2.0, 5.0, 2.6]), np.array([0.1, 1.6, 2.3, 2.0, 5.1, 2.6]), turns)
    assert got == ["A", "A", "B", "B", UNKNOWN, "B"]
    assert assign_speakers(np.array([1.0]), np.array([2.0]), []) == [UNKNOWN]
    assert assign_speakers(np.array([]), np.array([]), turns) == []


def test_target_speakers():
    turns = [(0, 1, "INT"), (1, 5, "PAR"), (5, 6, "INT")]
    assert target_speakers(turns, "all") == (None, None)
    assert target_speakers(turns, "dominant") == ({"PAR"}, "PAR")
    assert target_speakers(turns, "INT") == ({"INT"}, "INT")
    with pytest.raises(InputError, match="no such speaker"):
        target_speakers(turns, "NOBODY")
    assert target_speakers([], "dominant") == (set(), None)


# ------------------------------------------------------------------ transcripts

SRT = """1
00:00:01,000 --> 00:00:03,500
Interviewer: How are you today?

2
00:00:04,000 --> 00:00:07,250
Participant: I am fine,
thank you.
"""

VTT = """WEBVTT

NOTE made by hand

cue-1
00:01.000 --> 00:03.500
<v Dr Smith>How are you <b>today</b>?

00:00:04.000 --> 00:00:07.250
<v Pat>I am fine thank you.
"""


def test_srt_with_speakers(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text(SRT)
    tr = read_transcript(p)
    assert tr.has_times and tr.has_speakers
    assert [(s.start_s, s.end_s, s.speaker) for s in tr.segments] == [(1.0, 3.5, "Interviewer"), (4.0, 7.25, "Participant")]
    words = transcript_words(tr, [], 10.0)
    assert [w[2] for w in words] == "How are you today? I am fine, thank you.".split()
    assert words[0][0] == 1.0 and abs(words[3][1] - 3.5) < 1e-9 and words[4][0] == 4.0
    assert all(b >= a for a, b, *_ in words)


def test_vtt_voices_and_tags(tmp_path):
    p = tmp_path / "a.vtt"
    p.write_text(VTT)
    tr = read_transcript(p)
    assert [s.speaker for s in tr.segments] == ["Dr Smith", "Pat"]
    assert tr.segments[0].text == "How are you today?"
    assert tr.segments[0].start_s == 1.0 and tr.segments[1].end_s == 7.25


def test_json_whisper_style_with_words(tmp_path):
    obj = {"segments": [
        {"start": 0.5, "end": 2.0, "text": " hello there", "words": [{"start": 0.5, "end": 1.0, "word": " hello"}, {"start": 1.1, "end": 2.0, "word": " there"}]},
        {"start": 2.5, "end": 3.0, "text": "bye", "speaker": "B"},
    ]}
    p = tmp_path / "a.json"
    p.write_text(json.dumps(obj))
    tr = read_transcript(p)
    assert tr.has_times and not tr.has_speakers
    words = transcript_words(tr, [], 5.0)
    assert words[:2] == [(0.5, 1.0, "hello", None), (1.1, 2.0, "there", None)]
    assert words[2][2] == "bye" and words[2][3] == "B"


def test_txt_without_times_spreads_over_speech(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("A: one two three\n\nB: four five six seven\n")
    tr = read_transcript(p)
    assert not tr.has_times and tr.has_speakers
    words = transcript_words(tr, [(1.0, 3.0), (10.0, 12.0)], 20.0)
    assert [w[2] for w in words] == "one two three four five six seven".split()
    assert words[0][0] == 1.0 and abs(words[-1][1] - 12.0) < 1e-6
    for a, b, *_ in words:
        assert 1.0 <= a <= 12.0 and a <= b
        assert not (3.0 < a < 10.0)  # never starts inside the silence
    assert [w[3] for w in words] == ["A"] * 3 + ["B"] * 4


def test_bad_transcript_is_one_line_input_error(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("{not json")
    with pytest.raises(InputError) as ei:
        read_transcript(p)
    assert "\n" not in str(ei.value) and "a.json" in str(ei.value)


def test_find_transcript_order(tmp_path):
    audio = tmp_path / "in" / "sub" / "rec one.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"x")
    assert find_transcript(audio, "sub/rec one.wav", None, True) is None
    stem = audio.with_suffix(".txt")
    stem.write_text("hi")
    assert find_transcript(audio, "sub/rec one.wav", None, True) == stem
    full = audio.with_name(audio.name + ".srt")
    full.write_text(SRT)
    assert find_transcript(audio, "sub/rec one.wav", None, True) == full
    assert find_transcript(audio, "sub/rec one.wav", None, False) is None
    d = tmp_path / "tr"
    (d / "sub").mkdir(parents=True)
    t1 = d / "sub" / "rec one.vtt"
    t1.write_text(VTT)
    assert find_transcript(audio, "sub/rec one.wav", str(d), True) == t1


def test_find_transcript_for_odd_names(tmp_path):
    """A non-UTF-8 name finds its transcript under its own bytes; a name too long for a sidecar is no error."""
    import os

    from hilbert_cli.batch import name_text

    d = tmp_path / "tr"
    d.mkdir()
    raw = b"caf\xe9 interview.wav"  # Latin-1, not UTF-8
    rid = name_text(raw)
    assert rid == "caf%E9 interview.wav"
    t = Path(os.fsdecode(bytes(d) + b"/" + raw[:-4] + b".json"))
    t.write_text('{"segments": []}')
    assert find_transcript(tmp_path / os.fsdecode(raw), rid, str(d), False) == t
    long = tmp_path / ("x" * 250 + ".wav")  # long.wav.json would be 255+ bytes
    long.write_bytes(b"x")
    assert find_transcript(long, long.name, None, True) is None


# ------------------------------------------------------------------ windows, VAD, clustering


def test_asr_windows_bounded_and_cut_between_regions():
    speech = [(0.5, 4.0), (5.0, 12.0), (12.5, 29.0), (40.0, 41.0), (50.0, 120.0)]
    w = asr_windows(speech, 30.0, 130.0)
    assert all(e - s <= 30.0 + 1e-6 for s, e in w)
    assert all(w[i][1] <= w[i + 1][0] for i in range(len(w) - 1))
    covered = sum(e - s for s, e in w)
    assert covered >= sum(e - s for s, e in speech)
    # the 70 s region is cut into equal pieces, others are whole
    assert any(abs(s - 49.8) < 1e-6 for s, _ in w)


def test_streamed_vad_equals_whole_recording(tmp_path):
    from hilbert_cli.prepare.diarize.vad import SileroVad, speech_regions

    rng = np.random.default_rng(0)
    x = np.zeros(16000 * 12, dtype=np.float32)
    t = np.arange(16000 * 3) / 16000
    burst = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    x[16000 * 2 : 16000 * 5] = burst
    x[16000 * 7 : 16000 * 10] = burst
    x += 0.001 * rng.standard_normal(x.size).astype(np.float32)
    vad = SileroVad()
    whole, n1 = vad.probabilities([x])
    pieces = [x[i : i + 7777] for i in range(0, x.size, 7777)]
    streamed, n2 = vad.probabilities(pieces)
    assert n1 == n2 == x.size
    np.testing.assert_allclose(whole, streamed, atol=1e-5)
    # the same as faster-whisper's own (non-streaming) silero call
    from faster_whisper.vad import get_vad_model

    n = x.size // 512 * 512
    ref = np.asarray(get_vad_model()(x[:n].copy())).reshape(-1)
    np.testing.assert_allclose(whole[: ref.size], ref, atol=1e-4)
    regions = speech_regions(whole, x.size)
    assert all(0 <= s < e <= 12.0 for s, e in regions)


def test_cluster_separates_and_respects_counts():
    from hilbert_cli.prepare.diarize.vad_cluster import MAX_DIRECT, cluster

    rng = np.random.default_rng(0)
    c = rng.standard_normal((3, 32))
    x = np.concatenate([c[k] + 0.15 * rng.standard_normal((200, 32)) for k in range(3)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lab = cluster(x, threshold=0.5)
    assert len(set(lab)) == 3
    for k in range(3):
        assert len(set(lab[k * 200 : (k + 1) * 200])) == 1
    assert len(set(cluster(x, threshold=0.5, num_speakers=2))) == 2
    assert len(set(cluster(x, threshold=0.5, max_speakers=2))) == 2
    assert len(set(cluster(x, threshold=1.9, min_speakers=3))) == 3
    big = np.concatenate([x] * 2)  # 1200 rows > MAX_DIRECT: k-means micro-clusters first
    assert big.shape[0] > MAX_DIRECT
    assert len(set(cluster(big, threshold=0.5))) == 3


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    from hilbert_cli.prepare.diarize.speaker_encoders import mel_filterbank

    np.testing.assert_allclose(mel_filterbank(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), atol=1e-7)


def test_options_validation_and_hash():
    from hilbert_cli.errors import ConfigError
    from hilbert_cli.prepare import config_hash

    a = PrepareOptions()
    assert config_hash(a) == config_hash(PrepareOptions(device="cpu", batch_size=2))  # runtime-only
    assert config_hash(a) != config_hash(PrepareOptions(speaker="dominant"))
    assert PrepareOptions.model_validate(json.loads(a.model_dump_json())) == a
    with pytest.raises(ConfigError, match="min_speakers"):
        PrepareOptions.build(min_speakers=3, max_speakers=2)
    with pytest.raises(ConfigError, match="diarization"):
        PrepareOptions.build(diarization="magic")
