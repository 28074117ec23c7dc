"""The segment-linear baseline: every segment votes, and its C is chosen on training folds only."""

from __future__ import annotations

import numpy as np

from hilbert_cli.training import segment_linear
from hilbert_cli.training.baselines import run_baseline_cv
from hilbert_cli.training.data import FeatureDataset
from hilbert_cli.training.splits import make_splits


def _votes(n: int = 60, seed: int = 0, n_classes: int = 2):
    """Each segment is of one class (a strong cue in audio dim 0..); a recording's label is its
    most frequent segment class; recordings of 5-15 segments, groups of 3 recordings."""
    rng = np.random.default_rng(seed)
    audio, labels = [], []
    for _ in range(n):
        k = int(rng.integers(5, 16))
        cls = rng.integers(0, n_classes, k)
        x = rng.normal(size=(k, 6))
        x[np.arange(k), cls] += 3.0
        audio.append(x.astype(np.float32))
        labels.append(int(np.bincount(cls, minlength=n_classes).argmax()))
    text = [rng.normal(size=(len(a), 4)).astype(np.float32) for a in audio]
    ds = FeatureDataset.from_arrays([f"r{i}" for i in range(n)], audio, text, {"y": labels},
                                    groups=[f"g{i // 3}" for i in range(n)],
                                    class_names={"y": [str(c) for c in range(n_classes)]})
    return ds


def test_a_recordings_probabilities_are_the_mean_of_its_segments_votes():
    ds = _votes()
    tr, te = np.arange(40), np.arange(40, 60)
    y = ds.labels["y"]
    probs, diag = segment_linear.fit_predict(ds, y, tr, te, 2)
    model = segment_linear._fit_recordings(ds, y, tr, diag["C"])  # the model fit_predict used
    for k, i in enumerate(te):
        x, _ = segment_linear.segment_rows(ds, np.array([i]))
        np.testing.assert_allclose(probs[k], model.predict_proba(x).mean(0), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_c_is_chosen_on_the_training_recordings_alone():
    ds = _votes()
    y = ds.labels["y"].copy()
    tr = np.arange(45)
    c, scores = segment_linear.choose_c(ds, y, tr, 2)
    assert c in segment_linear.GRID and set(scores) == set(segment_linear.GRID)
    assert scores[c] == max(scores.values())
    y[45:] = 1 - y[45:]  # the test recordings' labels change: the choice must not
    assert segment_linear.choose_c(ds, y, tr, 2) == (c, scores)


def test_fitting_takes_at_most_the_cap_of_segments_of_a_recording():
    ds = _votes()
    x, owner = segment_linear.segment_rows(ds, np.arange(10), cap=4)
    assert np.bincount(owner).max() == 4 and x.shape[1] == ds.d_audio + ds.d_text
    x_all, owner_all = segment_linear.segment_rows(ds, np.arange(10))
    assert len(x_all) == int(ds.mask[:10].sum()) > len(x)


def test_three_classes_by_vote():
    ds = _votes(n=90, n_classes=3)
    r = run_baseline_cv(ds, "y", make_splits(ds.labels["y"], ds.groups, n_folds=3, seed=0), "segment-linear")
    assert r.oof_probs.shape == (90, 3) and r.auc > 0.75  # chance is 0.5
    assert all("C" in d and d["features"] == segment_linear.WHAT for d in r.diagnostics)
