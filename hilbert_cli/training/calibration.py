"""Calibration maps for a task's class probabilities, fitted on out-of-fold predictions.

A document-level model trained to convergence reads 0.99998 / 0.00002 for most recordings; a
clinical team needs probabilities whose 0.8 means "right 8 times in 10". One scalar map per
task, fitted on the cross-validation's out-of-fold probabilities (never on the training fit):

- binary: Platt scaling, p1' = sigmoid(a * logit(p1) + b), a and b from scikit-learn's
  LogisticRegression on the one logit feature (unpenalised);
- multi-class: temperature scaling, p' = softmax(log p / T), T minimising the negative
  log-likelihood (scipy's bounded scalar search over log T, as scikit-learn's own temperature
  calibrator does; its public API calibrates only estimators, not stored predictions).

Temperature scaling keeps every recording's arg-max class; Platt keeps the ranking (a > 0 is
enforced) but its intercept may move a recording across 0.5, as calibration should. The map is
plain JSON, checked on load by from_json, so a model directory stays data, never code.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

_EPS = 1e-12
METHODS = ("platt", "temperature")


def _logp(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, np.float64), _EPS, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: the |accuracy - confidence| gap over equal-width confidence bins, weighted by count."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y)
    if len(y) == 0:
        return float("nan")
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gap = 0.0
    for b in np.unique(bins):
        m = bins == b
        gap += m.sum() * abs(float((pred[m] == y[m]).mean()) - float(conf[m].mean()))
    return gap / len(y)


def brier_score(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean squared distance between the probabilities and the one-hot truth (summed over classes)."""
    probs = np.asarray(probs, np.float64)
    onehot = np.eye(probs.shape[1])[np.asarray(y, int)]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def _fit_platt(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    lp = _logp(probs)
    x = (lp[:, 1] - lp[:, 0])[:, None]
    lr = LogisticRegression(C=np.inf).fit(x, (np.asarray(y) == 1).astype(int))
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if not a > 0:  # the scores carry no usable order on these folds: keep the raw ranking
        a, b = 1.0, 0.0
    return {"a": a, "b": b}


def _fit_temperature(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy.optimize import minimize_scalar

    lp, y = _logp(probs), np.asarray(y, int)

    def nll(log_t: float) -> float:
        z = lp / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())

    res = minimize_scalar(nll, bounds=(math.log(1e-2), math.log(1e3)), method="bounded")
    return {"temperature": float(math.exp(res.x))}


def fit_calibration(probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The calibration map of one task from out-of-fold probabilities [n, C] and true classes [n]."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y, int)
    if probs.ndim != 2 or probs.shape[0] != len(y) or probs.shape[1] < 2 or len(y) == 0:
        raise ValueError(f"calibration needs probabilities [n, C>=2] and n labels (got {probs.shape}, {len(y)})")
    method = "platt" if probs.shape[1] == 2 else "temperature"
    params = _fit_platt(probs, y) if method == "platt" else _fit_temperature(probs, y)
    cal = {"method": method, **params, "n_classes": int(probs.shape[1]), "n": int(len(y))}
    after = apply_calibration(probs, cal)
    cal.update(ece_raw=expected_calibration_error(probs, y), ece_calibrated=expected_calibration_error(after, y),
               brier_raw=brier_score(probs, y), brier_calibrated=brier_score(after, y))
    return cal


def cross_fitted_probs(probs: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> np.ndarray:
    """Each fold's probabilities calibrated by a map fitted on the other folds' out-of-fold
    probabilities: what calibration does for recordings the map never saw."""
    probs, y, fold_of = np.asarray(probs, np.float64), np.asarray(y, int), np.asarray(fold_of)
    after = np.array(probs)
    for k in np.unique(fold_of):
        rest = fold_of != k
        if len(np.unique(y[rest])) < 2:
            continue  # no map can be fitted without this fold: its probabilities stay raw
        after[~rest] = apply_calibration(probs[~rest], fit_calibration(probs[rest], y[rest]))
    return after


def cross_fitted_errors(probs: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> dict[str, float]:
    """ECE and Brier of cross_fitted_probs: the in-sample figures of fit_calibration flatter the map."""
    after = cross_fitted_probs(probs, y, fold_of)
    return {"ece_cross_fitted": expected_calibration_error(after, y), "brier_cross_fitted": brier_score(after, y)}


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean confidence, accuracy, count) of the top label per non-empty equal-width bin (the ECE's bins)."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    used = np.unique(bins)
    return (np.array([conf[bins == b].mean() for b in used]), np.array([(pred == y)[bins == b].mean() for b in used]),
            np.array([(bins == b).sum() for b in used]))


def plot_reliability(task: str, raw: np.ndarray, calibrated: np.ndarray, y: np.ndarray, path) -> None:
    """reliability_<task>.png: top-label accuracy against confidence, raw and cross-fitted calibrated."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfectly calibrated")
    for name, p in (("raw", raw), ("calibrated (cross-fitted)", calibrated)):
        conf, acc, n = reliability_bins(p, y)
        ax.plot(conf, acc, marker="o", label=f"{name}, ECE {expected_calibration_error(p, y):.3f}")
        for c, a, k in zip(conf, acc, n):
            ax.annotate(str(k), (c, a), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel="confidence (top label)", ylabel="accuracy", title=f"{task}: reliability (out-of-fold)",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def apply_calibration(probs: np.ndarray, cal: Mapping[str, Any]) -> np.ndarray:
    """Calibrated probabilities [n, C] (rows sum to 1, same arg-max) under a map from fit_calibration."""
    lp = _logp(np.atleast_2d(probs))
    if cal["method"] == "platt":
        z = cal["a"] * (lp[:, 1] - lp[:, 0]) + cal["b"]
        p1 = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1.0 - p1, p1], axis=1)
    return _softmax(lp / cal["temperature"])


def from_json(obj: Any, where: str, n_classes: int) -> dict[str, Any]:
    """A stored map checked as untrusted data: known method, finite parameters, the model's class count.
    Raises ValueError naming `where` and the key."""
    if not isinstance(obj, dict) or obj.get("method") not in METHODS:
        raise ValueError(f"{where}: 'method' must be one of {', '.join(METHODS)}")
    keys = ("a", "b") if obj["method"] == "platt" else ("temperature",)
    out: dict[str, Any] = {"method": obj["method"]}
    for k in keys:
        v = obj.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: '{k}' must be a finite number")
        out[k] = float(v)
    if obj["method"] == "temperature" and not out["temperature"] > 0:
        raise ValueError(f"{where}: 'temperature' must be > 0")
    if obj["method"] == "platt" and n_classes != 2 or obj.get("n_classes", n_classes) != n_classes:
        raise ValueError(f"{where}: a {obj['method']} map for {obj.get('n_classes')} classes, the model has {n_classes}")
    return out
