"""The demo corpus: deterministic, balanced, participant-dominated, labels carried by text and prosody."""

import csv
import shutil
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from hilbert_cli.demo.corpus import CLASSES, NEGATIVE, POSITIVE, CorpusSpec, build_corpus, make_scripts

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_scripts_are_deterministic_balanced_and_carry_the_label():
    spec = CorpusSpec()
    a, b = make_scripts(spec), make_scripts(spec)
    assert [(s.recording_id, s.label, [u.text for u in s.utterances]) for s in a] == \
           [(s.recording_id, s.label, [u.text for u in s.utterances]) for s in b]
    assert make_scripts(replace(spec, seed=1))[0].utterances != a[0].utterances
    train = [s for s in a if s.split == "train"]
    assert len(train) == spec.n_participants * spec.per_class * len(CLASSES)
    for p in {s.participant for s in train}:  # every participant records every class equally
        labels = sorted(s.label for s in train if s.participant == p)
        assert labels == sorted(list(CLASSES) * spec.per_class)
    assert not {s.participant for s in train} & {s.participant for s in a if s.split == "heldout"}

    def stats(label):
        utts = [u for s in train if s.label == label for u in s.utterances if u.speaker != "interviewer"]
        pos = np.mean([u.text in POSITIVE for u in utts])
        neg = np.mean([u.text in NEGATIVE for u in utts])
        return pos, neg, np.mean([u.pitch for u in utts]), np.mean([u.speed for u in utts])

    p_pos, p_neg, p_pitch, p_speed = stats("positive")
    n_pos, n_neg, n_pitch, n_speed = stats("negative")
    assert p_pos > 0.35 and p_neg == 0 and n_neg > 0.35 and n_pos == 0  # the text carries it, not perfectly
    assert p_pos < 0.7 and n_neg < 0.7
    assert p_pitch > n_pitch + 8 and p_speed > n_speed + 20  # and so does prosody
    words = lambda s, who: sum(len(u.text.split()) for u in s.utterances if (u.speaker == "interviewer") == who)
    assert all(words(s, False) > 1.5 * words(s, True) for s in a)  # the participant speaks most


@needs_espeak
def test_build_small_corpus(tmp_path):
    spec = CorpusSpec(n_participants=1, per_class=1, n_heldout_participants=1, heldout_per_class=1,
                      answers=(2, 2), sentences_per_answer=(1, 2))
    info = build_corpus(tmp_path / "c", spec, workers=2)
    assert (info.n_train, info.n_heldout) == (3, 3)
    rows = list(csv.DictReader(info.labels.open()))
    assert [r.keys() for r in rows][0] == {"recording_id", "affect", "participant"}
    for r in rows:
        audio, sr = sf.read(info.train_dir / r["recording_id"])
        assert sr == 16000 and audio.ndim == 1 and 5 < len(audio) / sr < 60
        assert np.abs(audio).max() > 0.05
    assert 0.55 < info.participant_share < 0.95
    # a second build with the same spec reuses the files
    mtime = (info.train_dir / rows[0]["recording_id"]).stat().st_mtime_ns
    info2 = build_corpus(tmp_path / "c", spec)
    assert (info2.train_dir / rows[0]["recording_id"]).stat().st_mtime_ns == mtime
    assert not list((tmp_path / "c").rglob("*.tmp*"))


def test_length_effect_shortens_negative_answers_and_lengthens_their_pauses():
    base = CorpusSpec()
    assert make_scripts(replace(base, length_effect=0.0))[0].utterances == make_scripts(base)[0].utterances
    assert replace(base, length_effect=0.0).key() == base.key()  # demo corpora built before stay valid
    train = [s for s in make_scripts(replace(base, per_class=4, length_effect=1.0)) if s.split == "train"]

    def per_label(label):
        ss = [s for s in train if s.label == label]
        n_said = np.mean([sum(u.speaker != "interviewer" for u in s.utterances) for s in ss])
        pause = np.mean([p for s in ss for u, p in zip(s.utterances, s.pauses_s) if u.speaker != "interviewer"])
        return n_said, pause

    (neg_n, neg_pause), (pos_n, pos_pause) = per_label("negative"), per_label("positive")
    assert neg_n < pos_n - 1.0  # about one sentence fewer per answer, over 4-5 answers
    assert neg_pause > 1.8 * pos_pause
