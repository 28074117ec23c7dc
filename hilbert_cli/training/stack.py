"""Stacked training: how many models train at once, in which waves, and the stack's bookkeeping.

fit_models (training/trainer.py) trains several models (CV folds) as one stacked model
(torch.func); these helpers size the stack, share one batch size, drop finished models and clip
each model's gradients on its own.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..nn.config import ModelConfig
from .config import TrainConfig
from .data import FeatureDataset

__all__ = ["common_batch_size", "job_bytes", "parallel_models", "waves", "make_optimizer", "compact",
           "clip_per_model"]


def common_batch_size(train_sizes: Sequence[int], batch_size: int) -> int:
    """One batch size for every model trained together (stacked models need equal batch shapes).

    b = n_min // ceil(n_min / batch_size): close to batch_size, and the smallest training set
    splits into equal batches. Each epoch a model takes len(train) // b batches of b recordings
    from a fresh permutation; the few left over (different ones every epoch) wait for the next.
    """
    n_min = max(1, min(int(n) for n in train_sizes))
    return max(1, n_min // int(np.ceil(n_min / max(1, batch_size))))


def job_bytes(dataset: FeatureDataset, mc: ModelConfig, batch: int) -> int:
    """Rough memory of one model of a stack: its preprocessed copy of the features plus the
    activations a training step keeps for backward (attention maps grow with segments^2)."""
    n, length = dataset.n, int(dataset.mask.shape[1])
    d_in = (mc.input_pca or dataset.d_audio) + (mc.input_pca or dataset.d_text)
    feats = n * length * d_in * 4
    acts = batch * (24 * mc.n_heads * length * length + 200 * length * mc.d_model) * 4
    return feats + acts


def parallel_models(n_jobs: int, bytes_per_job: int, device: str, requested: int = 0) -> int:
    """How many models train at once: `requested` when > 0, else up to 32 (a 25-fold CV in one
    stack: models that stop early leave it, and no wave waits for another's slowest fold),
    fewer when their job_bytes would take more than 3 GiB (CPU) or a quarter of the free GPU
    memory (long recordings: a few hundred segments train one model at a time)."""
    if requested > 0:
        return max(1, min(n_jobs, requested))
    if device.startswith("cuda"):
        budget = torch.cuda.mem_get_info()[0] // 4
    else:
        budget = 3 << 30
    return max(1, min(n_jobs, 32, budget // max(1, bytes_per_job)))


def waves(n: int, k: int) -> list[range]:
    """n jobs in ceil(n / k) balanced consecutive groups of at most k."""
    n_waves = max(1, int(np.ceil(n / max(1, k))))
    bounds = np.linspace(0, n, n_waves + 1).round().astype(int)
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def make_optimizer(params: dict, tc: TrainConfig) -> torch.optim.Optimizer:
    try:  # fused AdamW: one kernel for all parameters (far less per-step overhead on CPU)
        return torch.optim.AdamW(list(params.values()), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(list(params.values()), lr=tc.lr, weight_decay=tc.weight_decay)


def compact(params: dict, buffers: dict, opt: torch.optim.Optimizer, keep: list[int], tc: TrainConfig):
    """Drop finished models from the stack: parameters, buffers and AdamW state of the others.
    Every model of a stack started together, so they share AdamW's step count."""
    dev = next(iter(params.values())).device
    kt = torch.as_tensor(keep, dtype=torch.long, device=dev)
    new_params = {n: p.detach()[kt].clone().requires_grad_(True) for n, p in params.items()}
    new_buffers = {n: b[kt].clone() for n, b in buffers.items()}
    new_opt = make_optimizer(new_params, tc)
    for n, p in params.items():
        st = opt.state.get(p)
        if st:
            new_opt.state[new_params[n]] = {k: (v[kt].clone() if torch.is_tensor(v) and v.dim() > 0 else
                                                (v.clone() if torch.is_tensor(v) else v)) for k, v in st.items()}
    return new_params, new_buffers, new_opt


def clip_per_model(params: dict, max_norm: float) -> None:
    """clip_grad_norm_ for each model of the stack separately (the norm over its own gradients)."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        return
    sq = torch.stack([g.float().pow(2).flatten(1).sum(1) for g in grads]).sum(0)
    factor = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
