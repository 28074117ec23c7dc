"""HILBERT losses on batches of latent vectors (docs/ARCHITECTURE.md, "The HILBERT model").

All functions take ``[B, k]`` tensors (one row per recording of the batch) and return
scalar tensors. Conventions:
- cosine similarity / temperature for the contrastive losses and the InfoNCE critic;
- row i of every tensor belongs to recording i (the positives lie on the diagonal).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "info_nce",
    "dual_contrastive",
    "audio_text_contrastive",
    "linear_cka",
    "cka_loss",
    "infonce_mi",
    "mi_balance",
    "load_balance_loss",
]

_EPS = 1e-8


def _f(x: torch.Tensor) -> torch.Tensor:
    """float32 for half-precision inputs (autocast), else unchanged (float64 stays float64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _similarity(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    x = F.normalize(_f(x), dim=-1, eps=_EPS)
    y = F.normalize(_f(y), dim=-1, eps=_EPS)
    return x @ y.T / temperature


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float = 0.1, symmetric: bool = True) -> torch.Tensor:
    """InfoNCE with positives (x_i, y_i) and every other pairing of the batch a negative."""
    logits = _similarity(x, y, temperature)
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def dual_contrastive(z_a: torch.Tensor, z_t: torch.Tensor, z_j: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Joint-centric dual contrastive loss: (z_j, z_a) and (z_j, z_t) positives; no audio-text term."""
    return 0.5 * (info_nce(z_j, z_a, temperature) + info_nce(z_j, z_t, temperature))


def audio_text_contrastive(z_a: torch.Tensor, z_t: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Plain CLIP-style audio-text contrastive loss (variant ``contrastive_moe``)."""
    return info_nce(z_a, z_t, temperature)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA over the batch (centred covariance form), in [0, 1].

    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc = X - mean over rows.
    Invariant to orthogonal transforms and isotropic scaling of either argument.
    """
    x = _f(x) - _f(x).mean(dim=0, keepdim=True)
    y = _f(y) - _f(y).mean(dim=0, keepdim=True)
    cross = (y.T @ x).pow(2).sum()
    norm_x = (x.T @ x).pow(2).sum().sqrt()
    norm_y = (y.T @ y).pow(2).sum().sqrt()
    return cross / (norm_x * norm_y + _EPS)


def cka_loss(z_a: torch.Tensor, z_t: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
    """Structure-preserving loss: sum over m in {a, t} of 1 - CKA(Z_m, Z_j)."""
    return (1.0 - linear_cka(z_a, z_j)) + (1.0 - linear_cka(z_t, z_j))


def infonce_mi(x: torch.Tensor, y: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE lower bound of I(x; y): log B - CE(critic), dot-product (cosine) critic / temperature.

    The estimate never exceeds log(B) (B = batch size), since the cross-entropy is >= 0.
    """
    logits = _similarity(x, y, temperature)
    target = torch.arange(logits.shape[0], device=logits.device)
    return math.log(logits.shape[0]) - F.cross_entropy(logits, target)


def mi_balance(z_a: torch.Tensor, z_t: torch.Tensor, z_j: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Information-balance loss |I(z_a; z_j) - I(z_t; z_j)| with InfoNCE estimates."""
    return (infonce_mi(z_a, z_j, temperature) - infonce_mi(z_t, z_j, temperature)).abs()


def load_balance_loss(gate_probs: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
    """Switch-transformer load balancing: E * sum_e f_e * P_e (1 when perfectly balanced).

    gate_probs: [B, E] softmax of the gate logits (dense); assignment: [B, E] 0/1 mask of the
    experts each sample is routed to (top-k).
    """
    n_experts = gate_probs.shape[-1]
    f = assignment.float().mean(dim=0) / assignment.float().sum(dim=-1).mean().clamp_min(1.0)
    p = _f(gate_probs).mean(dim=0)
    return n_experts * (f * p).sum()
