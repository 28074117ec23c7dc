"""The training objective: cross-entropy plus the paper's auxiliary losses, weighted by LossConfig.

total = CE + contrastive * L_con + cka * L_cka + mi * L_mi (+ load balancing); the losses
themselves live with the network (hilbert_cli/nn/losses.py), the weights with training.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..nn import losses as L
from .config import LossConfig

__all__ = ["compute_loss", "class_weights", "segment_ce", "wide_penalty_coef"]


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class frequency, n / (C * count_c) (classes absent from y get weight 1)."""
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def wide_penalty_coef(n_train: int, loss_config: LossConfig) -> float:
    """1 / (C n_train): with a per-recording mean CE, logistic regression's L2 term for strength C."""
    return 1.0 / (loss_config.wide_c * max(1, int(n_train)))


def segment_ce(seg_logits: torch.Tensor, seg_mask: torch.Tensor, y: torch.Tensor,
               weights: Optional[torch.Tensor] = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of every valid segment [B, L, C] against its recording's label y [B]: the
    mean over each recording's segments, then the class-weighted mean over recordings (as the
    recording CE), so a recording of 500 segments counts once, as one of 20 does. Label
    smoothing as torch's cross_entropy applies it (the recording CE uses the same), so the
    configured smoothing reaches the segments too. vmap-safe (masked sums, no boolean indexing)."""
    logp = torch.log_softmax(seg_logits.float(), dim=-1)
    yy = y.unsqueeze(1).expand(-1, logp.shape[1])
    nll = -logp.gather(-1, yy.unsqueeze(-1)).squeeze(-1)  # [B, L]
    if label_smoothing > 0:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(-1)
    m = seg_mask.to(nll.dtype)
    per_rec = (nll * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)  # [B]
    w = torch.ones_like(per_rec) if weights is None else \
        (F.one_hot(y, logp.shape[-1]).to(nll.dtype) * weights.to(nll.dtype)).sum(-1)  # not weights[y]: vmap
    return (per_rec * w).sum() / w.sum().clamp_min(1e-12)


def compute_loss(out: dict, y: torch.Tensor, *, variant: str, loss_config: LossConfig,
                 weights: Optional[torch.Tensor] = None,
                 wide_coef: Optional[torch.Tensor | float] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """total = CE + l1 * contrastive + l2 * CKA + l3 * MI (+ load balancing) (+ the wide path's L2,
    wide_coef * 0.5 ||W||^2, wide_coef = 1 / (C n_train): wide_penalty_coef); the parts as detached
    scalar tensors. No data-dependent control flow: it runs under torch.func.vmap (one model per fold)."""
    lc = loss_config
    ce = F.cross_entropy(out["logits"].float(), y, weight=weights, label_smoothing=lc.label_smoothing)
    total = ce
    parts = {"ce": ce.detach()}
    b = y.shape[0]
    if b >= 3 and variant == "hilbert":
        za, zt, zj = out["z_a"], out["z_t"], out["z_j"]
        if lc.contrastive > 0:
            con = L.dual_contrastive(za, zt, zj, lc.temperature)
            total = total + lc.contrastive * con
            parts["contrastive"] = con.detach()
        if lc.cka > 0:
            cka = L.cka_loss(za, zt, zj)
            total = total + lc.cka * cka
            parts["cka"] = cka.detach()
        if lc.mi > 0:
            mi = L.mi_balance(za, zt, zj, lc.temperature)
            total = total + lc.mi * mi
            parts["mi"] = mi.detach()
    elif b >= 3 and variant == "contrastive_moe" and lc.contrastive > 0:
        con = L.audio_text_contrastive(out["z_a"], out["z_t"], lc.temperature)
        total = total + lc.contrastive * con
        parts["contrastive"] = con.detach()
    aux = out.get("aux_loss")
    if aux is not None and aux.requires_grad and lc.load_balance > 0:
        total = total + lc.load_balance * aux
        parts["load_balance"] = aux.detach()
    if "seg_logits" in out and lc.segment_vote > 0:  # each voting segment carries its recording's label
        seg = segment_ce(out["seg_logits"], out["seg_mask"], y, weights, lc.label_smoothing)
        total = total + lc.segment_vote * seg
        parts["segment_vote"] = seg.detach()
    if "wide_penalty" in out and wide_coef is not None:
        wide = wide_coef * out["wide_penalty"]
        total = total + wide
        parts["wide_l2"] = wide.detach()
    parts["total"] = total.detach()
    return total, parts
