"""Cross-validated evaluation of one (task, variant): out-of-fold probabilities and per-fold AUCs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .config import LossConfig, ModelConfig, TrainConfig
from .data import FeatureDataset
from .metrics import macro_auc
from .splits import inner_split
from .trainer import FittedModel, fit_model

__all__ = ["CVResult", "run_cv"]


@dataclass
class CVResult:
    """indices: dataset positions evaluated (each in exactly one test fold), y their labels,
    oof_probs [n, C] their out-of-fold probabilities, fold_of the fold that tested each.
    n_train[k]: recordings in training fold k (n_val[k] of them held out for early stopping)."""

    task: str
    variant: str
    class_names: list[str]
    indices: np.ndarray
    y: np.ndarray
    oof_probs: np.ndarray
    fold_of: np.ndarray
    fold_aucs: list[float]
    n_train: list[int]
    n_val: list[int]
    n_test: list[int]
    diagnostics: list[dict] = field(default_factory=list)
    models: Optional[list[FittedModel]] = None
    seconds: float = 0.0

    @property
    def auc(self) -> float:
        """Pooled out-of-fold macro AUC."""
        return macro_auc(self.y, self.oof_probs)

    @property
    def auc_mean(self) -> float:
        v = np.asarray(self.fold_aucs, float)
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    @property
    def auc_std(self) -> float:
        v = np.asarray(self.fold_aucs, float)
        return float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")

    @property
    def best_epochs(self) -> list[int]:
        return [int(d.get("best_epoch", 0)) for d in self.diagnostics]


def run_cv(dataset: FeatureDataset, task: str, model_config: ModelConfig, train_config: TrainConfig,
           splits: Sequence[tuple[np.ndarray, np.ndarray]], loss_config: Optional[LossConfig] = None, *,
           keep_models: bool = False, fold_callback: Optional[Callable[[int, dict], None]] = None,
           diagnostics_fn: Optional[Callable[[FittedModel, FeatureDataset, np.ndarray], dict]] = None) -> CVResult:
    """Train and test one model per fold. splits: (train_idx, test_idx) as dataset positions
    (see task_splits / make_splits). Each training fold is split again (inner_split,
    stratified and grouped like the outer folds) for early stopping.

    diagnostics[i] holds best_epoch, epochs_run, seconds, the last training-loss parts,
    the mean MoE gate weight per expert on the test fold, plus diagnostics_fn(model, dataset,
    test_idx) if given. keep_models keeps every fold's FittedModel (memory!).
    """
    t0 = time.perf_counter()
    tc = train_config
    y_all = dataset.labels[task]
    n_classes = len(dataset.class_names[task])
    idx_all, probs_all, fold_all = [], [], []
    fold_aucs, n_train, n_val, n_test, diags, models = [], [], [], [], [], []
    for k, (tr, te) in enumerate(splits):
        tr, te = np.asarray(tr, np.int64), np.asarray(te, np.int64)
        if (y_all[te] < 0).any() or (y_all[tr] < 0).any():
            raise ValueError(f"run_cv: split {k} contains recordings without a {task!r} label")
        fit_idx, val_idx = inner_split(tr, y_all, dataset.groups, tc.val_fraction, seed=tc.seed + 7919 * (k + 1))
        fitted = fit_model(dataset, task, fit_idx, model_config, tc, loss_config, val_idx=val_idx,
                           seed=tc.seed * 1000 + k, keep_prepared=True)
        out = fitted.forward(dataset, te)
        probs = out["probs"]
        auc = macro_auc(y_all[te], probs)
        last = fitted.history[fitted.best_epoch - 1] if fitted.history else {}
        diag = {"fold": k, "best_epoch": fitted.best_epoch, "epochs_run": fitted.epochs_run,
                "seconds": round(fitted.seconds, 3), "val_ce": last.get("val_ce"),
                **{k2: v for k2, v in last.items() if k2.startswith("train_")},
                "gate_mean": out["gate"].mean(axis=0).tolist()}
        if diagnostics_fn is not None:
            diag.update(diagnostics_fn(fitted, dataset, te))
        fitted.release()
        idx_all.append(te)
        probs_all.append(probs)
        fold_all.append(np.full(len(te), k))
        fold_aucs.append(auc)
        n_train.append(len(tr))
        n_val.append(len(val_idx))
        n_test.append(len(te))
        diags.append(diag)
        if keep_models:
            models.append(fitted)
        if fold_callback is not None:
            fold_callback(k, {"auc": auc, **diag})
    order = np.argsort(np.concatenate(idx_all)) if idx_all else np.zeros(0, int)
    indices = np.concatenate(idx_all)[order] if idx_all else np.zeros(0, np.int64)
    return CVResult(task=task, variant=model_config.variant, class_names=list(dataset.class_names[task]),
                    indices=indices, y=y_all[indices],
                    oof_probs=np.concatenate(probs_all)[order] if probs_all else np.zeros((0, n_classes)),
                    fold_of=np.concatenate(fold_all)[order] if fold_all else np.zeros(0, int),
                    fold_aucs=fold_aucs, n_train=n_train, n_val=n_val, n_test=n_test, diagnostics=diags,
                    models=models if keep_models else None, seconds=time.perf_counter() - t0)
