"""One-vs-rest macro AUC (scikit-learn), robust to classes missing from a fold."""

from __future__ import annotations

import numpy as np

__all__ = ["macro_auc", "fold_auc", "roc_curves"]


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """Binary: ROC AUC of P(class 1) (probs [n, 2], or [n] = P(class 1)). Multi-class: mean over
    classes of the one-vs-rest AUC, over the classes that have both positives and negatives in y
    (NaN if none). The one AUC of the package: train, compare and the diagnostics all use it."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    probs = np.asarray(probs, np.float64)
    if probs.ndim == 1:
        probs = np.stack([1.0 - probs, probs], axis=1)
    n_classes = probs.shape[1]
    if n_classes == 2:
        if len(np.unique(y)) < 2:
            return float("nan")
        return float(roc_auc_score(y == 1, probs[:, 1]))
    aucs = []
    for c in range(n_classes):
        pos = y == c
        if pos.any() and (~pos).any():
            aucs.append(roc_auc_score(pos, probs[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


fold_auc = macro_auc


def roc_curves(y: np.ndarray, probs: np.ndarray, grid: int = 101):
    """Macro-averaged one-vs-rest ROC on a common FPR grid -> (fpr, tpr)."""
    from sklearn.metrics import roc_curve

    y = np.asarray(y)
    fpr_grid = np.linspace(0, 1, grid)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    tprs = []
    for c in classes:
        pos = y == c
        if pos.any() and (~pos).any():
            f, t, _ = roc_curve(pos, probs[:, c])
            tprs.append(np.interp(fpr_grid, f, t))
    if not tprs:
        return fpr_grid, np.full_like(fpr_grid, np.nan)
    tpr = np.mean(tprs, axis=0)
    tpr[0] = 0.0
    return fpr_grid, tpr
