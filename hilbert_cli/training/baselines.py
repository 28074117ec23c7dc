"""The simplest honest baselines, cross-validated on exactly the folds of the HILBERT variants.

A number that beats nothing proves nothing: every train and compare report shows these rows
beside the model's.

- ``linear``: logistic regression on each recording's mean and standard deviation of its
  segment features (audio and text), standardised on the training fold.
- ``segment-linear``: logistic regression on single segments labelled with their recording's
  label, a recording's probabilities the mean of its segments' (training/segment_linear.py;
  its C is chosen by an inner CV of each training fold).
- ``length-only``: logistic regression on the document statistics alone (how much was said,
  how fast, with what pauses: embed/doc_stats.py); where the features carry none, on
  log(number of segments), the one length measure every features set has. Whoever reads a
  report must never mistake length for content.

All are class-weighted scikit-learn pipelines; `linear` and `length-only` use a regularisation
strength fixed before any run (C = 1.0): nothing is tuned on a test fold.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from . import segment_linear
from .cv import CVResult
from .data import FeatureDataset
from .logistic import standardized_logistic
from .metrics import macro_auc

__all__ = ["BASELINES", "baseline_features", "run_baseline_cv"]

#: baseline variant names, in report order
BASELINES = ("linear", "segment-linear", "length-only")

#: inverse L2 strength of every baseline (fixed before the run; sklearn's default)
C = 1.0


def _pooled(dataset: FeatureDataset) -> np.ndarray:
    """[N, 2 (d_a + d_t)]: per-recording mean and std over its valid segments."""
    w = dataset.mask.to(dataset.audio.dtype).unsqueeze(-1)
    n = w.sum(dim=1).clamp_min(1.0)
    parts = []
    for x in (dataset.audio, dataset.text):
        mean = (x * w).sum(dim=1) / n
        var = ((x - mean.unsqueeze(1)) ** 2 * w).sum(dim=1) / n
        parts += [mean, var.sqrt()]
    return np.concatenate([p.double().numpy() for p in parts], axis=1)


def baseline_features(dataset: FeatureDataset, kind: str) -> tuple[np.ndarray, str]:
    """(X [N, k], what X is) for the recording-level baseline `kind` (linear, length-only)."""
    if kind == "linear":
        return _pooled(dataset), "mean + std of the segment features"
    if kind == "length-only":
        if dataset.doc is not None:
            return dataset.doc.double().numpy(), "document statistics"
        return np.log1p(dataset.lengths.astype(np.float64))[:, None], "log number of segments"
    raise ValueError(f"baseline {kind!r} has no recording-level features (expected linear or length-only)")


def _model():
    return standardized_logistic(C)


def run_baseline_cv(dataset: FeatureDataset, task: str, splits: Sequence[tuple[np.ndarray, np.ndarray]],
                    kind: str) -> CVResult:
    """Out-of-fold probabilities of baseline `kind` on the given (train, test) splits."""
    t0 = time.perf_counter()
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r} (expected one of {', '.join(BASELINES)})")
    x, what = (None, segment_linear.WHAT) if kind == "segment-linear" else baseline_features(dataset, kind)
    y_all = dataset.labels[task]
    n_classes = len(dataset.class_names[task])
    splits = [(np.asarray(tr, np.int64), np.asarray(te, np.int64)) for tr, te in splits]
    probs, aucs, diagnostics = [], [], []
    for k, (tr, te) in enumerate(splits):
        p = np.zeros((len(te), n_classes))
        present = np.unique(y_all[tr])
        diagnostics.append({"fold": k, "features": what})
        if len(present) < 2:  # one class in training: the prior is all a model could say
            p[:, present] = 1.0
        elif x is None:
            p, chosen = segment_linear.fit_predict(dataset, y_all, tr, te, n_classes)
            diagnostics[-1].update(chosen)
        else:
            m = _model().fit(x[tr], y_all[tr])
            p[:, m.classes_] = m.predict_proba(x[te])
        probs.append(p)
        aucs.append(macro_auc(y_all[te], p))
    idx = np.concatenate([te for _, te in splits]) if splits else np.zeros(0, np.int64)
    order = np.argsort(idx)
    fold_of = np.concatenate([np.full(len(te), k) for k, (_, te) in enumerate(splits)]) if splits else idx
    return CVResult(task=task, variant=kind, class_names=list(dataset.class_names[task]), indices=idx[order],
                    y=y_all[idx[order]], oof_probs=np.concatenate(probs)[order] if splits else np.zeros((0, n_classes)),
                    fold_of=fold_of[order], fold_aucs=aucs, n_train=[len(tr) for tr, _ in splits],
                    n_val=[0] * len(splits), n_test=[len(te) for _, te in splits],
                    diagnostics=diagnostics,
                    seconds=time.perf_counter() - t0)
