"""benchmarks' EmoDB documents: the sentence mix carries no label (the text-only control's premise)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EMODB = ROOT.parent / "shared" / "data" / "emodb" / "wav"


@pytest.fixture(scope="module")
def names() -> list[str]:
    found = sorted(p.name for p in EMODB.glob("*.wav"))
    if not found:
        pytest.skip(f"EmoDB not found under {EMODB}")
    return found


@pytest.fixture(scope="module")
def build():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_audio_encoders import build_documents

    return build_documents


def _sentence_label_p(names, docs) -> float:
    """p of (sentence x document label) independence within speakers: per-speaker chi-square
    statistics over the utterances of their documents, summed (the leak is per speaker)."""
    from scipy.stats import chi2, chi2_contingency

    stat, dof = 0.0, 0
    for spk in sorted({d[0] for d in docs}):
        counts = Counter((names[i][2:5], label) for s, idx, label in docs if s == spk for i in idx)
        sents = sorted({s for s, _ in counts})
        table = np.array([[counts[(s, lab)] for lab in (0, 1)] for s in sents])
        res = chi2_contingency(table, correction=False)
        stat, dof = stat + res[0], dof + res[2]
    return float(chi2.sf(stat, dof))


def test_balanced_documents_hold_no_label_in_their_sentences(names, build):
    docs = build(names, 20, seed=3)
    # the old draw (utterances by emotion group only) leaks the label through the sentence mix
    assert _sentence_label_p(names, build(names, 20, seed=3, sentence_balanced=False)) < 1e-3
    assert _sentence_label_p(names, docs) > 0.01
    by_spk: dict[str, list[int]] = {}
    for spk, idx, label in docs:
        by_spk.setdefault(spk, []).append(label)
        assert 20 <= len(idx) <= 40 and all(names[i][:2] == spk for i in idx)
        neg = sum(names[i][5] in "WATEL" for i in idx)
        assert label == int(2 * neg > len(idx)) and all(names[i][5] in "WATELFN" for i in idx)
    # half of each speaker's documents are negative-majority
    assert len(by_spk) == 10 and all(sum(v) == 10 for v in by_spk.values())
    # and the two labels hold exactly the same sentences: documents pair up with one sentence
    # sequence, one of each label
    seqs = Counter((spk, tuple(names[i][2:5] for i in idx), label) for spk, idx, label in docs)
    for (spk, seq, label), count in seqs.items():
        assert seqs[(spk, seq, 1 - label)] == count, (spk, seq)
    # utterances of a (sentence, group) cell are used in turn before any repeats
    assert build(names, 20, seed=3) == docs
