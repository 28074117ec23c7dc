"""The linear and length-only baselines: what they see, and that they use the given folds."""

from __future__ import annotations

import numpy as np
import pytest

from hilbert_cli.training.baselines import baseline_features, run_baseline_cv
from hilbert_cli.training.data import FeatureDataset
from hilbert_cli.training.splits import make_splits


def _dataset(signal: str, n: int = 90, seed: int = 0, with_doc: bool = False):
    """Binary label carried by the audio mean ("content") or by how many segments ("length")."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    if signal == "length":
        lens = np.where(y == 1, rng.integers(3, 6, n), rng.integers(8, 12, n))
    else:
        lens = rng.integers(3, 12, n)
    audio = [rng.normal(size=(k, 6)) + (0.8 * y[i] if signal == "content" else 0.0) for i, k in enumerate(lens)]
    text = [rng.normal(size=(k, 4)) for k in lens]
    doc = rng.normal(size=(n, 3)) if with_doc else None
    if with_doc:
        doc[:, 1] += 3.0 * y  # the statistics carry the label
    groups = [f"g{i // 3}" for i in range(n)]
    ds = FeatureDataset.from_arrays([f"r{i}" for i in range(n)], [a.astype(np.float32) for a in audio],
                                    [t.astype(np.float32) for t in text], {"y": list(map(int, y))},
                                    groups=groups, class_names={"y": ["0", "1"]}, doc=doc)
    return ds, make_splits(ds.labels["y"], ds.groups, n_folds=5, seed=0)


@pytest.mark.parametrize("signal, kind, lo, hi", [
    ("content", "linear", 0.9, 1.0), ("content", "length-only", 0.0, 0.7),
    ("length", "length-only", 0.9, 1.0),
    ("content", "segment-linear", 0.9, 1.0), ("length", "segment-linear", 0.0, 0.75),  # it sees no counts
])
def test_each_baseline_sees_only_its_features(signal, kind, lo, hi):
    ds, splits = _dataset(signal)
    r = run_baseline_cv(ds, "y", splits, kind)
    assert lo <= r.auc <= hi, (signal, kind, r.auc)
    assert len(r.fold_aucs) == 5 and r.variant == kind


@pytest.mark.parametrize("kind", ["linear", "segment-linear"])
def test_out_of_fold_predictions_follow_the_given_folds(kind):
    ds, splits = _dataset("content")
    r = run_baseline_cv(ds, "y", splits, kind)
    for k, (_, te) in enumerate(splits):
        assert set(r.indices[r.fold_of == k]) == set(te)
    assert sorted(r.indices) == list(range(ds.n))
    np.testing.assert_allclose(r.oof_probs.sum(axis=1), 1.0)


def test_length_only_uses_document_statistics_when_present():
    ds, splits = _dataset("content", with_doc=True)
    x, what = baseline_features(ds, "length-only")
    assert what == "document statistics" and x.shape == (ds.n, 3)
    assert run_baseline_cv(ds, "y", splits, "length-only").auc > 0.9
    ds.doc = None
    x, what = baseline_features(ds, "length-only")
    assert what == "log number of segments" and x.shape == (ds.n, 1)
