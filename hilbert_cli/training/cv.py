"""Cross-validated evaluation of one (task, variant): out-of-fold probabilities and per-fold AUCs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..nn.config import ModelConfig
from .config import LossConfig, TrainConfig
from .data import FeatureDataset
from .metrics import macro_auc
from .splits import inner_folds, inner_split
from .trainer import FitJob, FittedModel, fit_models

__all__ = ["CVResult", "run_cv", "choose_epochs", "best_mean_epoch"]


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
        return [int(d["best_epoch"]) for d in self.diagnostics if "best_epoch" in d]  # none for baselines


def best_mean_epoch(histories: Sequence[list[dict]], criterion: str = "auc") -> int:
    """The epoch (1-based) with the best validation curve averaged over inner folds.

    A fold that stopped early keeps its last value for the later epochs (it was no longer
    improving). criterion auc: mean val_auc (falls back to the CE when a fold's AUC is
    undefined); loss: mean val_ce. Ties go to the earlier epoch.
    """
    hs = [h for h in histories if h]
    if not hs:
        return 1
    n = max(len(h) for h in hs)

    def curve(key: str) -> np.ndarray:
        return np.stack([[float(h[min(e, len(h) - 1)].get(key, np.nan)) for e in range(n)] for h in hs])

    auc = curve("val_auc")
    score = auc.mean(0) if criterion == "auc" and np.isfinite(auc).all() else -curve("val_ce").mean(0)
    return int(np.nanargmax(score)) + 1


def _inner_jobs(train_idx: np.ndarray, y: np.ndarray, groups, tc: TrainConfig, seed: int) -> list[FitJob]:
    return [FitJob(fit, val, seed=seed + i) for i, (fit, val) in
            enumerate(inner_folds(train_idx, y, groups, tc.inner_folds, seed=seed))]


def choose_epochs(dataset: FeatureDataset, task: str, train_sets: Sequence[np.ndarray], model_config: ModelConfig,
                  train_config: TrainConfig, loss_config: Optional[LossConfig] = None,
                  seed: int = 0) -> list[tuple[int, list[int]]]:
    """Per training set: (epoch count by inner CV, the inner folds' own best epochs).

    Every inner fold of every training set trains at once (one fit_models call), with early
    stopping on its validation part; best_mean_epoch over each set's inner folds. A set too
    small to split gets max_epochs // 2 (fixed before the run).
    """
    y = dataset.labels[task]
    jobs, owner = [], []
    for k, tr in enumerate(train_sets):
        js = _inner_jobs(np.asarray(tr, np.int64), y, dataset.groups, train_config, seed + 104729 * (k + 1))
        jobs += js
        owner += [k] * len(js)
    fitted = fit_models(dataset, task, jobs, model_config, train_config, loss_config) if jobs else []
    out = []
    for k in range(len(train_sets)):
        mine = [f for f, o in zip(fitted, owner) if o == k]
        if not mine:
            out.append((max(1, train_config.max_epochs // 2), []))
            continue
        out.append((best_mean_epoch([f.history for f in mine], train_config.early_stopping),
                    [f.best_epoch for f in mine]))
    return out


def run_cv(dataset: FeatureDataset, task: str, model_config: ModelConfig, train_config: TrainConfig,
           splits: Sequence[tuple[np.ndarray, np.ndarray]], loss_config: Optional[LossConfig] = None, *,
           keep_models: bool = False, fold_callback: Optional[Callable[[int, dict], None]] = None,
           epoch_callback: Optional[Callable[[int, dict], None]] = None,
           diagnostics_fn: Optional[Callable[[FittedModel, FeatureDataset, np.ndarray], dict]] = None) -> CVResult:
    """Train and test one model per fold. splits: (train_idx, test_idx) as dataset positions
    (see task_splits / make_splits). Each training fold is split again (inner_split,
    stratified and grouped like the outer folds) for early stopping; with train_config.epoch_choice
    inner_cv, the epoch count comes from an inner CV of the training fold instead (choose_epochs)
    and the model trains on the whole training fold for that many epochs; with inner_ensemble the
    inner models themselves (each stopped early on its inner validation part) predict the test
    fold, their probabilities averaged (best_epoch: their median; diagnostics_fn and keep_models
    see the fold's last inner model). The folds train several
    at once (fit_models; train_config.parallel_folds), so fold_callback(k, ...) comes in the
    order folds finish, not in k order; epoch_callback(k, history record) after every epoch of
    every fold (progress while a stack of folds trains).

    diagnostics[i] holds best_epoch, epochs_run, seconds, the last training-loss parts,
    the mean MoE gate weight per expert on the test fold, plus diagnostics_fn(model, dataset,
    test_idx) if given. keep_models keeps every fold's FittedModel (memory!).
    """
    t0 = time.perf_counter()
    tc = train_config
    y_all = dataset.labels[task]
    n_classes = len(dataset.class_names[task])
    splits = [(np.asarray(tr, np.int64), np.asarray(te, np.int64)) for tr, te in splits]
    jobs, n_val, inner = [], [], {}
    for k, (tr, te) in enumerate(splits):
        if (y_all[te] < 0).any() or (y_all[tr] < 0).any():
            raise ValueError(f"run_cv: split {k} contains recordings without a {task!r} label")
    owner: list[int] = list(range(len(splits)))  # job -> outer fold
    if tc.epoch_choice == "inner_cv":
        chosen = choose_epochs(dataset, task, [tr for tr, _ in splits], model_config, tc, loss_config, seed=tc.seed)
        for k, (tr, _) in enumerate(splits):
            jobs.append(FitJob(tr, tr[:0], seed=tc.seed * 1000 + k, n_epochs=chosen[k][0]))
            n_val.append(0)
            inner[k] = chosen[k][1]
    elif tc.epoch_choice == "inner_ensemble":
        owner = []
        for k, (tr, _) in enumerate(splits):
            js = _inner_jobs(tr, y_all, dataset.groups, tc, tc.seed + 104729 * (k + 1)) \
                or [FitJob(*inner_split(tr, y_all, dataset.groups, tc.val_fraction, seed=tc.seed + 7919 * (k + 1)),
                           seed=tc.seed * 1000 + k)]  # too small for an inner CV: one early-stopped model
            jobs += js
            owner += [k] * len(js)
            n_val.append(int(np.mean([len(j.val_idx) for j in js])))
    else:
        for k, (tr, _) in enumerate(splits):
            fit_idx, val_idx = inner_split(tr, y_all, dataset.groups, tc.val_fraction, seed=tc.seed + 7919 * (k + 1))
            jobs.append(FitJob(fit_idx, val_idx, seed=tc.seed * 1000 + k))
            n_val.append(len(val_idx))
    members: dict[int, list] = {}  # outer fold -> (outputs, fitted) of its inner models so far (inner_ensemble)
    probs_of: dict[int, np.ndarray] = {}
    aucs: dict[int, float] = {}
    diags: dict[int, dict] = {}
    models: dict[int, FittedModel] = {}

    def tested(j: int, fitted: FittedModel) -> None:
        k, te = owner[j], splits[owner[j]][1]
        out = fitted.forward(dataset, te)
        if tc.epoch_choice == "inner_ensemble":
            members.setdefault(k, []).append((out, fitted))
            if len(members[k]) < owner.count(k):
                return  # the fold's other inner models are still training
            outs, fits = zip(*members.pop(k))
            out = {key: np.mean([o[key] for o in outs], axis=0) for key in ("probs", "gate")}
            inner[k] = [f.best_epoch for f in fits]
            fitted = fits[-1]
            fitted.best_epoch = int(np.median(inner[k]))
        probs_of[k] = out["probs"]
        aucs[k] = macro_auc(y_all[te], out["probs"])
        last = fitted.history[min(fitted.best_epoch, len(fitted.history)) - 1] if fitted.history else {}
        diag = {"fold": k, "best_epoch": fitted.best_epoch, "epochs_run": fitted.epochs_run,
                "seconds": round(fitted.seconds, 3), "val_ce": last.get("val_ce"),
                **{k2: v for k2, v in last.items() if k2.startswith("train_")},
                "gate_mean": out["gate"].mean(axis=0).tolist(), "epoch_choice": tc.epoch_choice}
        if k in inner:
            diag["inner_best_epochs"] = inner[k]
        if diagnostics_fn is not None:
            diag.update(diagnostics_fn(fitted, dataset, te))
        diags[k] = diag
        if keep_models:
            models[k] = fitted
        if fold_callback is not None:
            fold_callback(k, {"auc": aucs[k], **diag})

    fit_models(dataset, task, jobs, model_config, tc, loss_config, on_fitted=tested,
               on_epoch=(lambda j, rec: epoch_callback(owner[j], rec)) if epoch_callback is not None else None)
    ks = range(len(splits))
    idx_all = [splits[k][1] for k in ks]
    order = np.argsort(np.concatenate(idx_all)) if idx_all else np.zeros(0, int)
    indices = np.concatenate(idx_all)[order] if idx_all else np.zeros(0, np.int64)
    return CVResult(task=task, variant=model_config.variant, class_names=list(dataset.class_names[task]),
                    indices=indices, y=y_all[indices],
                    oof_probs=np.concatenate([probs_of[k] for k in ks])[order] if idx_all
                    else np.zeros((0, n_classes)),
                    fold_of=np.concatenate([np.full(len(splits[k][1]), k) for k in ks])[order] if idx_all
                    else np.zeros(0, int),
                    fold_aucs=[aucs[k] for k in ks], n_train=[len(splits[k][0]) for k in ks], n_val=n_val,
                    n_test=[len(splits[k][1]) for k in ks], diagnostics=[diags[k] for k in ks],
                    models=[models[k] for k in ks] if keep_models else None, seconds=time.perf_counter() - t0)
