"""Emotion-shift segmentation on constructed transcripts (no audio unless stated)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.fixtures_embed import tiny_sentence_model, words_table, write_tone_wav  # noqa: F401
from hilbert_cli.segment import SegmentOptions
from hilbert_cli.segment.segmenter import SEGMENTS_SCHEMA, Segmenter

POS = [
    "I absolutely love my wonderful family and we are so happy together.",
    "Every day is a joy and I feel great about our beautiful home.",
    "My children are amazing and I am proud of them, it is fantastic.",
]
NEG = [
    "But then my father died and everything became terrible and sad.",
    "I hated the awful hospital, it was horrible and painful.",
    "I still feel miserable, angry and hopeless about the loss.",
]
MONO = ["The table is in the room next to the door of the house."] * 10


def seg(**kw) -> Segmenter:
    return Segmenter(SegmentOptions(emotion="off", prosody=False, **kw))


def check_partition(words: pa.Table, segs: pa.Table, selected: int | None = None) -> None:
    """Segments never overlap, are in time order, and cover every selected word exactly once."""
    rows = segs.to_pylist()
    assert segs.schema.equals(SEGMENTS_SCHEMA, check_metadata=False)
    assert [r["segment_index"] for r in rows] == list(range(len(rows)))
    n = selected if selected is not None else words.num_rows
    assert sum(r["n_words"] for r in rows) == n
    starts = words.column("start_s").to_pylist()
    ends = words.column("end_s").to_pylist()
    idx = words.column("word_index").to_pylist()
    pos = {w: i for i, w in enumerate(idx)}
    for a, b in zip(rows, rows[1:]):
        assert a["end_s"] <= b["start_s"] + 1e-9, "segments overlap"
        assert a["last_word"] < b["first_word"]
    for r in rows:
        assert r["start_s"] <= r["end_s"]
        assert r["start_s"] == pytest.approx(starts[pos[r["first_word"]]])
        # covers the speech of its words (end clipped only where the next word starts earlier)
        assert r["end_s"] >= min(ends[pos[r["last_word"]]], starts[pos[r["last_word"]]] + 1e-3) - 1e-9


def test_sentiment_flip_cuts_at_the_flip():
    words = words_table(POS + NEG)
    out = seg().segment(words)
    check_partition(words, out)
    rows = out.to_pylist()
    flip_word = sum(len(s.split()) for s in POS)  # word_index of "But"
    starts = [r["first_word"] for r in rows]
    assert flip_word in starts, [(r["first_word"], r["cut_reason"], r["change_score"]) for r in rows]
    at = rows[starts.index(flip_word)]
    assert at["cut_reason"] == "shift"
    assert at["change_score"] >= 0.2 and at["d_sentiment"] > 0.5
    before, after = rows[starts.index(flip_word) - 1], at
    assert before["sentiment"] > 0.3 and after["sentiment"] < -0.3


def test_monotone_passage_cut_only_by_length_limits():
    words = words_table(MONO)
    opts = dict(max_words=32, max_s=12.0)
    out = seg(**opts).segment(words)
    check_partition(words, out)
    rows = out.to_pylist()
    assert len(rows) >= 4
    assert rows[0]["cut_reason"] == "start"
    assert {r["cut_reason"] for r in rows[1:]} <= {"max_words", "max_s"}
    for r in rows:
        assert r["n_words"] <= 32 and r["end_s"] - r["start_s"] <= 12.0 + 1e-9
    # as few cuts as the limits allow
    assert len(rows) == int(np.ceil(words.num_rows / 32)) or len(rows) == int(np.ceil(
        (words.column("end_s")[-1].as_py() - words.column("start_s")[0].as_py()) / 12.0))


def test_unpunctuated_stream_without_pauses_respects_limits():
    words = words_table([" ".join(["okay"] * 150)], rate=0.3)
    out = seg(max_words=25, max_s=9.0).segment(words)
    check_partition(words, out)
    for r in out.to_pylist():
        assert r["n_words"] <= 25 and r["end_s"] - r["start_s"] <= 9.0 + 1e-9


def test_speaker_changes_and_target_selection():
    turns = [("P", POS[0]), ("I", "And how did that make you feel?"), ("P", POS[1]), ("P", NEG[0])]
    words = words_table(turns, target="P", gap=0.2)
    out = seg(min_words=3, min_s=0.5).segment(words)  # target only
    n_target = sum(len(t.split()) for s, t in turns if s == "P")
    check_partition(words.filter(words.column("is_target")), out, n_target)
    rows = out.to_pylist()
    assert {r["speaker"] for r in rows} == {"P"}
    assert "turn" in [r["cut_reason"] for r in rows]  # the interviewer spoke in between
    everyone = seg(speakers="all", min_words=3, min_s=0.5).segment(words)
    check_partition(words, everyone)
    sp = everyone.to_pylist()
    assert {r["speaker"] for r in sp} == {"P", "I"}
    for r in sp[1:]:
        if r["speaker"] != sp[r["segment_index"] - 1]["speaker"]:
            assert r["cut_reason"] == "speaker"


def test_long_pause_is_a_hard_cut():
    words = words_table(MONO[:2], gap=3.0)
    out = seg(min_words=3, min_s=0.5).segment(words)
    assert [r["cut_reason"] for r in out.to_pylist()] == ["start", "pause"]


def test_empty_and_no_target_words():
    words = words_table(POS)
    empty = words.slice(0, 0)
    assert seg().segment(empty).num_rows == 0
    none = words.set_column(words.schema.get_field_index("is_target"), "is_target",
                            pa.array([False] * words.num_rows))
    assert seg().segment(none).num_rows == 0


def test_lexicons_work_offline():
    from hilbert_cli.segment.signals import lexicon_signals

    s = lexicon_signals(["I love this wonderful day", "This is a terrible, awful loss", "The door is brown."])
    assert s.sentiment[0] > 0.5 and s.sentiment[1] < -0.5
    assert s.polarity[0] > 0 > s.polarity[1]
    assert s.subjectivity[0] > s.subjectivity[2]


def test_prosody_signals_from_audio(tmp_path):
    words = words_table(POS + NEG)
    wav = write_tone_wav(tmp_path / "a.wav", float(words.column("end_s")[-1].as_py()) + 1, f0=150.0)
    out = Segmenter(SegmentOptions(emotion="off", prosody=True)).segment(words, audio_path=str(wav))
    check_partition(words, out)
    p = np.array(out.column("pitch_hz").to_pylist(), dtype=float)
    e = np.array(out.column("energy_db").to_pylist(), dtype=float)
    assert np.all(np.isfinite(p)) and np.all((p > 100) & (p < 220)), p
    assert np.all(np.isfinite(e))


def test_emotion_classifier_from_a_local_directory(tmp_path, tiny_sentence_model):
    from transformers import BertConfig, BertForSequenceClassification

    raw = tiny_sentence_model.parent / "tiny-bert"
    d = tmp_path / "emo"
    labels = ["anger", "joy", "sadness"]
    cfg = BertConfig.from_pretrained(raw, num_labels=3, id2label=dict(enumerate(labels)),
                                     label2id={l: i for i, l in enumerate(labels)})
    BertForSequenceClassification(cfg).save_pretrained(d)
    for f in raw.glob("*.txt"):
        (d / f.name).write_bytes(f.read_bytes())
    for f in raw.glob("*token*"):
        (d / f.name).write_bytes(f.read_bytes())
    s = Segmenter(SegmentOptions(emotion=str(d), prosody=False))
    words = words_table(POS + NEG)
    out = s.segment(words)
    check_partition(words, out)
    assert set(out.column("emotion").to_pylist()) <= set(labels)
    assert all(v is not None for v in out.column("d_emotion").to_pylist()[1:])
    assert s.provenance()["emotion"]["source"] == "path"
    assert Segmenter(SegmentOptions(emotion="off")).provenance()["emotion"] is None


@pytest.mark.parametrize("f0", [85.0, 140.0, 230.0, 400.0])
def test_pitch_tracker_on_harmonic_tones(f0):
    from hilbert_cli.segment.prosody import span_prosody

    t = np.arange(3 * 16000) / 16000
    x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6)) * 0.2
    pitch, energy = span_prosody(x.astype(np.float32))
    assert pitch == pytest.approx(f0, rel=0.02) and np.isfinite(energy)
    assert np.isnan(span_prosody(np.zeros(16000, np.float32))[0])
    assert np.isnan(span_prosody(0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))[0])
