"""Typed configuration of the HILBERT losses and training loop (`[loss]`, `[train]` of a recipe).

The model's own configuration (`[model]`, `ModelConfig`, the variants) belongs to the model
package: hilbert_cli/nn/config.py. These pydantic models are the arguments of the Python API
(`run_cv`, `fit_model`); unknown keys are errors (``extra="forbid"``), so a typo in a recipe
names the key.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def _safe_name(v: str) -> str:
    """Names become one path component under output_dir (run dir, models/<task>, roc_<task>.png):
    `..`, `/`, NUL or a leading dot would write outside it or hide the output."""
    if not _SAFE_NAME.fullmatch(v):
        raise ValueError(f"{v!r} is not a safe file name (letters, digits, _ . -, not starting with a dot, "
                         "at most 100 characters)")
    return v


#: a recipe, task or comparison name: safe as one path component
SafeName = Annotated[str, AfterValidator(_safe_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LossConfig(_Strict):
    """total = CE + contrastive * L_con + cka * L_cka + mi * L_mi (+ load_balance * L_lb).

    A weight of 0 ablates that term. For variant ``contrastive_moe`` the `contrastive` weight
    applies to the plain audio-text contrastive loss and `cka` / `mi` are ignored; the
    ``transfer`` variants train with cross-entropy only.
    """

    contrastive: float = Field(0.1, ge=0.0)
    cka: float = Field(0.1, ge=0.0)
    mi: float = Field(0.1, ge=0.0)
    #: temperature of the contrastive losses and of the InfoNCE critic
    temperature: float = Field(0.1, gt=0.0)
    #: weight of the load-balancing term (only with top_k > 0)
    load_balance: float = Field(0.01, ge=0.0)
    #: class-weighted cross-entropy (inverse class frequency in the training fold)
    class_weighted: bool = True
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: inverse L2 strength of the wide path (ModelConfig.wide), as the `linear` baseline's C: the
    #: loss adds ||W||^2 / (2 C n_train), which with the class-weighted CE is logistic regression's
    #: objective per recording
    wide_c: float = Field(1.0, gt=0.0)
    #: weight of the per-segment cross-entropy of the segment vote (ModelConfig.segment_vote):
    #: every valid segment labelled with its recording's label; each recording's mean over its
    #: segments, class-weighted over recordings (training/objective.py segment_ce; no label smoothing)
    segment_vote: float = Field(1.0, ge=0.0)


class TrainConfig(_Strict):
    """Optimisation, cross-validation and early stopping."""

    n_folds: int = Field(25, ge=0, description="0 = no cross-validation, final model only")
    batch_size: int = Field(32, ge=2)
    max_epochs: int = Field(40, ge=1)
    #: stop after this many epochs without a better validation loss (0 = never stop early)
    patience: int = Field(6, ge=0)
    #: validation criterion for early stopping: macro AUC (ties -> lower CE) or the weighted CE
    early_stopping: Literal["auc", "loss"] = "auc"
    #: never stop early before this many epochs (plateaus at the start are common)
    min_epochs: int = Field(5, ge=1)
    #: fraction of the training fold held out (stratified, grouped) for early stopping
    val_fraction: float = Field(0.15, ge=0.0, lt=0.9)
    #: how a CV fold's epoch count is chosen. early_stopping: on one inner split of val_fraction
    #: (best epoch's weights). inner_cv: inner_folds grouped splits of the training fold train with
    #: early stopping, the epoch with the best mean validation curve is taken, and the model is
    #: trained on the whole training fold for that many epochs (training folds only; steadier on
    #: ~100-200 recordings, where one 20-recording validation split is noise;
    #: ~inner_folds+1x the time). inner_ensemble: the inner_folds inner models themselves (each
    #: stopped early on its own validation part) predict each test fold, their probabilities
    #: averaged (no refit: ~inner_folds x the time; steadier than one model; the final model is
    #: still one model, trained for the inner models' median best epoch)
    epoch_choice: Literal["early_stopping", "inner_cv", "inner_ensemble"] = "early_stopping"
    inner_folds: int = Field(3, ge=2, le=10)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    grad_clip: float = Field(1.0, ge=0.0)
    seed: int = 0
    #: bag augmentation (training/augment.py): each training recording of a batch keeps a random
    #: share in [crop_min, 1] of its segments (a contiguous run or a random subset: crop_mode), a
    #: new draw every time; evaluation sees whole recordings. 1.0 = off. Why: with ~100 recordings
    #: (bags) an attention model memorises them; sub-bags of a recording carry its label too
    crop_min: float = Field(1.0, gt=0.0, le=1.0)
    crop_mode: Literal["contiguous", "subset"] = "contiguous"
    #: average the weights of a model's last swa_epochs epochs (0 = off; only for models trained a
    #: fixed number of epochs: inner_cv, val_fraction 0, the final model). Why: on small data the
    #: last epoch's weights jump from epoch to epoch; their average is steadier (SWA)
    swa_epochs: int = Field(0, ge=0)
    #: cap on segments per recording (evenly spaced subsample beyond it); None = keep all
    max_segments: Optional[int] = Field(512, ge=1)
    #: models (CV folds) trained at once as one stacked model (torch.func.vmap); 0 = auto: up to
    #: 32, fewer when their features and activations would not fit in ~3 GiB (CPU) or a quarter of
    #: the free GPU memory. Results are deterministic for a given seed and value (it changes
    #: which dropout draws a fold gets, not what the folds see).
    parallel_folds: int = Field(0, ge=0)
    #: torch CPU threads (0 = leave torch's default)
    threads: int = Field(0, ge=0)
    device: str = "auto"
    #: bf16/fp16 autocast on CUDA (never on CPU)
    amp: bool = True
    #: also train the final model per task on all labelled recordings
    final_model: bool = True
    #: calibration map of the final model's probabilities (training/calibration.py): auto = store it
    #: only when, cross-fitted on the out-of-fold predictions, it lowers both ECE and Brier (on
    #: ~30-100 recordings a fitted temperature can make new recordings worse); always; off
    calibration: Literal["auto", "always", "off"] = "auto"
    #: per-fold test diagnostics in the report (CKA, InfoNCE MI, gate weights, audio-only /
    #: text-only masking AUCs; hilbert_cli.evaluation.diagnostics)
    diagnostics: bool = True
    #: the baselines cross-validated beside the variants on the same folds (training/baselines.py).
    #: `linear` cannot be left out: no table shows HILBERT without the simplest baseline.
    #: `segment-linear` picks its C by an inner CV: ~12 s a fold at 500 recordings on 2 CPU cores
    #: (benchmarks/bench_baselines.py), which a many-task run may leave out
    baselines: list[Literal["linear", "segment-linear", "length-only"]] = ["linear", "segment-linear", "length-only"]

    @field_validator("baselines")
    @classmethod
    def _linear_always(cls, v: list[str]) -> list[str]:
        if "linear" not in v:
            raise ValueError("must include 'linear': every report shows the simplest baseline beside the model")
        return list(dict.fromkeys(v))
