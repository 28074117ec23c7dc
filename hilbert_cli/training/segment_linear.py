"""The `segment-linear` baseline: logistic regression on single segments, each labelled with its
recording's label; a recording's class probabilities are the mean of its segments'.

Why it is a baseline of every report: a recording-level label over a long recording is a vote of
what happens in its segments (e.g. "most utterances are negative"). A linear model of the
recording's mean and std (`linear`) sees one point per recording, ~100 on a small study; this
one sees every segment (thousands) and votes, which on real emotional speech (README "Accuracy
on real speech") had a higher fold-mean AUC than `linear` and the attention model on every
encoder (pooled AUC not always). HILBERT has to beat it too.

Nothing is tuned on a test fold: the inverse L2 strength C is chosen from the fixed GRID by an
inner cross-validation of each training fold (of at most INNER_MAX_RECORDINGS of its
recordings), grouped like the outer folds (speaker or family) where groups are known, scored by
the recording-level macro AUC. At most MAX_FIT_SEGMENTS evenly
spaced segments of a recording are fitted on (bounded cost on long recordings); every segment
votes at prediction. Cost: ~8-12 s per outer fold from 100 to 1000 recordings on 2 CPU cores
(benchmarks/bench_baselines.py); `[train] baselines` may leave it out of a many-task run.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .data import FeatureDataset, subsample_positions
from .logistic import logistic, standardized_logistic
from .metrics import macro_auc

__all__ = ["GRID", "MAX_FIT_SEGMENTS", "WHAT", "choose_c", "fit_predict", "segment_rows"]

#: what the model sees, for reports
WHAT = "single segments' features (audio and text), one vote each"

#: candidate inverse L2 strengths (fixed before any run), strongest first: ties go to the simpler model.
#: Up to 0.1: the demo picks 0.1 in 2 of its 6 folds, but a grid up to 1.0 doubled the cost on EmoDB
#: (weakly regularised fits take many more iterations) and changed none of its AUCs there
GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
#: C where no inner split is possible (too few recordings or groups)
DEFAULT_C = 0.003
#: segments of one recording that are fitted on (evenly spaced), at most
MAX_FIT_SEGMENTS = 32
INNER_FOLDS = 3
#: training recordings the inner CV that picks C runs on, at most (a fixed random subset, so the
#: choice costs the same at 200 or 5000 recordings; the final fit uses them all)
INNER_MAX_RECORDINGS = 200


def segment_rows(dataset: FeatureDataset, idx: np.ndarray, cap: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """(X [n_segments, d_a + d_t], owner [n_segments]: position in idx) of recordings idx's valid
    segments, audio then text features; at most `cap` evenly spaced segments per recording."""
    xs, owner = [], []
    for k, i in enumerate(np.asarray(idx, np.int64)):
        valid = np.flatnonzero(dataset.mask[i].numpy())
        keep = valid[subsample_positions(len(valid), cap)]
        xs.append(np.concatenate([dataset.audio[i, keep].float().numpy(), dataset.text[i, keep].float().numpy()], 1))
        owner.append(np.full(len(keep), k))
    d = dataset.d_audio + dataset.d_text
    return (np.concatenate(xs) if xs else np.zeros((0, d), np.float32),
            np.concatenate(owner) if owner else np.zeros(0, np.int64))


def _fit_recordings(dataset: FeatureDataset, y_all: np.ndarray, tr: np.ndarray, c: float):
    x, owner = segment_rows(dataset, tr, MAX_FIT_SEGMENTS)
    return standardized_logistic(c).fit(x, y_all[tr][owner])


def _fit_path(dataset: FeatureDataset, y_all: np.ndarray, tr: np.ndarray):
    """The models of every C in GRID on recordings tr, one after the other: the segments are read
    and standardised once, and each fit starts from the previous C's solution (warm start, the
    regularisation path), a few times faster than fitting each C from zero."""
    import copy

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, owner = segment_rows(dataset, tr, MAX_FIT_SEGMENTS)
    y = y_all[tr][owner]
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    lr = logistic(GRID[0], warm_start=True)
    for c in GRID:
        lr.set_params(C=c).fit(xs, y)
        yield make_pipeline(scaler, copy.deepcopy(lr))


def _predict(model, rows: tuple[np.ndarray, np.ndarray], n_recordings: int, n_classes: int) -> np.ndarray:
    """[n_recordings, n_classes]: each recording's mean of its segments' probabilities; rows are
    segment_rows of those recordings (gathered once, whatever number of models votes on them)."""
    x, owner = rows
    p = np.zeros((len(x), n_classes))
    if len(x):
        p[:, model.classes_] = model.predict_proba(x)
    out = np.zeros((n_recordings, n_classes))
    np.add.at(out, owner, p)
    n = np.bincount(owner, minlength=n_recordings)[:, None]
    return np.where(n > 0, out / np.maximum(n, 1), 1.0 / n_classes)  # a recording with no segment: no opinion


def _inner_splits(y: np.ndarray, groups: Optional[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None and len(np.unique(groups)) >= 2:
        k = min(INNER_FOLDS, len(np.unique(groups)))
        return list(GroupKFold(n_splits=k).split(y, y, groups))
    k = min(INNER_FOLDS, int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0)
    if k < 2:
        return []
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(y, y))


def choose_c(dataset: FeatureDataset, y_all: np.ndarray, tr: np.ndarray, n_classes: int) -> tuple[float, dict]:
    """(C, {C: inner macro AUC}) chosen on training recordings tr alone."""
    if len(tr) > INNER_MAX_RECORDINGS:
        tr = np.sort(np.random.default_rng(0).choice(tr, INNER_MAX_RECORDINGS, replace=False))
    groups = dataset.groups[tr] if dataset.groups is not None else None
    splits = [(a, b) for a, b in _inner_splits(y_all[tr], groups) if len(np.unique(y_all[tr][a])) >= 2]
    if not splits:
        return DEFAULT_C, {}
    per_c: dict[float, list[float]] = {c: [] for c in GRID}
    for a, b in splits:
        held = segment_rows(dataset, tr[b])
        for c, model in zip(GRID, _fit_path(dataset, y_all, tr[a])):
            per_c[c].append(macro_auc(y_all[tr][b], _predict(model, held, len(b), n_classes)))
    scores = {c: float(np.nanmean(v)) if not np.all(np.isnan(v)) else float("nan") for c, v in per_c.items()}
    finite = [c for c in GRID if np.isfinite(scores[c])]
    return (max(finite, key=lambda c: scores[c]) if finite else DEFAULT_C), scores


def fit_predict(dataset: FeatureDataset, y_all: np.ndarray, tr: np.ndarray, te: np.ndarray,
                n_classes: int) -> tuple[np.ndarray, dict]:
    """(probabilities [len(te), n_classes], diagnostics) of the model fitted on training recordings tr."""
    c, scores = choose_c(dataset, y_all, tr, n_classes)
    model = _fit_recordings(dataset, y_all, tr, c)
    probs = _predict(model, segment_rows(dataset, te), len(te), n_classes)
    return probs, {"C": c, "inner_auc": {f"{k:g}": v for k, v in scores.items()}}
