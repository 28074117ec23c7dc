"""HILBERT training: data loading + padding, splits, trainer, cross-validation, baselines, checkpoints.

Public API (imported lazily so `hilbert --help` never imports torch):

    FeatureDataset.from_parquet(features, labels, ...)   # load and pad once
    make_splits(y, groups, n_folds, seed), inner_split(...)
    run_cv(dataset, task, model_config, train_config, splits, loss_config=None) -> CVResult
    fit_model(...) -> FittedModel
    load_model_dir(path) -> TrainedBundle;  TrainedBundle.predict(audio_emb, text_emb)

A recipe's experiments (`hilbert train`, `hilbert compare`: folds, runs, reports) are one
layer up, in hilbert_cli/evaluation/.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LossConfig": "config", "TrainConfig": "config",
    "FeatureDataset": "data", "Preprocessor": "preprocess", "read_labels": "data",
    "make_splits": "splits", "inner_split": "splits", "task_splits": "splits",
    "fit_model": "trainer", "FittedModel": "trainer", "compute_loss": "objective", "predict": "trainer",
    "run_cv": "cv", "CVResult": "cv", "macro_auc": "metrics", "fold_auc": "metrics",
    "load_model_dir": "checkpoint", "save_model_dir": "checkpoint", "TrainedBundle": "checkpoint",
    "load_model": "predictor", "Model": "predictor", "Predictions": "predictor",
    "TaskPrediction": "checkpoint",
    "make_synthetic": "synthetic", "write_synthetic": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{mod}", __name__), name)
