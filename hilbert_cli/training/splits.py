"""Cross-validation splits: stratified k-fold, grouped when groups are given (no group in two folds)."""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["make_splits", "inner_split", "inner_folds", "task_splits", "check_grouped"]


def _fold_error(task: Optional[str], n_folds: int, y: np.ndarray, g: Optional[np.ndarray]) -> ConfigError:
    """One line: the task, the counts that limit the folds and the largest fold count that works.

    Stratified k-fold needs k <= the largest class (sklearn's limit) and k <= the recordings
    (groups when grouped); the smallest class is named too, as folds beyond it test without it.
    """
    counts = np.unique(y, return_counts=True)[1]
    n_units = len(np.unique(g)) if g is not None else len(y)
    k_max = min(n_units, int(counts.max()))
    where = f"task {task!r}: " if task else ""
    grouped = f" in {n_units} group(s)" if g is not None else ""
    fix = f"use --folds {k_max} or fewer" if k_max >= 2 else "label more recordings (or use --folds 0: final model only)"
    return ConfigError(f"{where}cannot make {n_folds} cross-validation folds from {len(y)} labelled recording(s){grouped}"
                       f" (smallest class {int(counts.min())}, largest {int(counts.max())}): {fix}")


def make_splits(y: Sequence[int], groups: Optional[Sequence] = None, n_folds: int = 25,
                seed: int = 0, *, task: Optional[str] = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (grouped when `groups` is given) k-fold: list of (train_idx, test_idx) into y.

    StratifiedKFold without groups; StratifiedGroupKFold with groups, so every group (speaker,
    family) lies in exactly one test fold and never in train and test at once. n_folds is
    reduced (with a warning) to the number of groups when there are fewer; a fold count that
    still cannot be stratified (more folds than recordings, or than the largest class) is a
    ConfigError naming `task`, the counts and the fold count that works. Deterministic for a
    given seed.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    g = None if groups is None else np.asarray([str(v) for v in groups])
    if len(np.unique(y)) < 2:
        where = f"task {task!r}: " if task else ""
        raise ConfigError(f"{where}cannot cross-validate: only one class among {len(y)} labelled recordings")
    k = min(n_folds, len(np.unique(g))) if g is not None else n_folds
    if k < 2 or k > np.unique(y, return_counts=True)[1].max():
        raise _fold_error(task, n_folds, y, g)
    if k < n_folds:
        warnings.warn(f"{n_folds} folds requested but only {k} possible; using {k}", stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only n members"
        if g is None:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            folds = list(splitter.split(np.zeros(len(y)), y))
        else:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            folds = list(splitter.split(np.zeros(len(y)), y, g))
    return [(np.sort(tr), np.sort(te)) for tr, te in folds if len(te)]


def inner_split(train_idx: np.ndarray, y: np.ndarray, groups: Optional[np.ndarray] = None,
                val_fraction: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split a training fold into (fit_idx, val_idx) for early stopping; same stratification and
    grouping rules as make_splits. y / groups are indexed by the values of train_idx.
    Returns (train_idx, empty) when val_fraction is 0 or the fold is too small to split.
    """
    train_idx = np.asarray(train_idx)
    if val_fraction <= 0 or len(train_idx) < 8:
        return train_idx, train_idx[:0]
    k = max(2, int(round(1.0 / val_fraction)))
    yy = np.asarray(y)[train_idx]
    gg = None if groups is None else np.asarray(groups)[train_idx]
    if len(np.unique(yy)) < 2:
        return train_idx, train_idx[:0]
    try:
        folds = make_splits(yy, gg, k, seed)
    except ConfigError:
        return train_idx, train_idx[:0]
    fit, val = folds[0]
    return train_idx[fit], train_idx[val]


def inner_folds(train_idx: np.ndarray, y: np.ndarray, groups: Optional[np.ndarray] = None, n_folds: int = 3,
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """All n_folds (fit_idx, val_idx) splits of a training fold (stratified, grouped like
    make_splits), for choosing the epoch count by inner CV; every training recording
    validates once. [] when the fold is too small or has one class (the caller falls back)."""
    train_idx = np.asarray(train_idx)
    yy = np.asarray(y)[train_idx]
    gg = None if groups is None else np.asarray(groups)[train_idx]
    if len(train_idx) < 8 or len(np.unique(yy)) < 2:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer groups than folds: fewer folds
        try:
            folds = make_splits(yy, gg, n_folds, seed)
        except ConfigError:
            return []
    return [(train_idx[fit], train_idx[val]) for fit, val in folds if len(fit) and len(val)]


def task_splits(dataset, task: str, n_folds: int = 25, seed: int = 0,
                grouped: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """make_splits over the recordings labelled for `task`, as dataset positions."""
    idx = dataset.task_indices(task)
    y = dataset.labels[task][idx]
    g = dataset.groups[idx] if (grouped and dataset.groups is not None) else None
    return [(idx[tr], idx[te]) for tr, te in make_splits(y, g, n_folds, seed, task=task)]


def check_grouped(splits, groups: np.ndarray) -> bool:
    """True when no group has recordings in both train and test of any fold."""
    groups = np.asarray(groups)
    return all(not (set(groups[tr]) & set(groups[te])) for tr, te in splits)
