"""The segment vote of HILBERT (ModelConfig.segment_vote): every segment of the joint sequence
votes for a class, a recording's vote is the mean of its segments' class probabilities.

Why: a label over a long recording is often a vote of its parts ("most utterances are
negative"). A model that only sees the pooled recording has one training point per recording
(~100 on a small study); one whose segments each carry the label has thousands. On real
emotional speech a logistic regression of that kind (the `segment-linear` baseline) had a higher
fold-mean AUC than the attention model on every encoder; here the voters are HILBERT's
contextualised segments.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SegmentVote", "vote_logits", "vote_shares"]


def vote_logits(seg_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, C]: log of the mean over valid segments of softmax(seg_logits [B, L, C]); mask [B, L]
    (at least one True per row). Branch-free, so it runs under torch.func.vmap."""
    logp = torch.log_softmax(seg_logits.float(), dim=-1)
    logp = logp.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    n = mask.sum(dim=1, keepdim=True).clamp_min(1).to(logp.dtype)
    return torch.logsumexp(logp, dim=1) - torch.log(n)


class SegmentVote(nn.Module):
    """Linear(d, C) on each segment -> (recording logits [B, C], segment logits [B, L, C])."""

    def __init__(self, d: int, n_classes: int):
        super().__init__()
        self.head = nn.Linear(d, n_classes)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(d) * 0.1)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seg = self.head(x)
        return vote_logits(seg, mask), seg


def vote_shares(seg_logits: torch.Tensor, mask: torch.Tensor, cls: int):
    """numpy [L]: each valid position's share of class `cls`'s vote, p_s(cls) / sum_s p_s(cls)
    (0 at padding; sums to 1): which segments carried the recording's predicted class."""
    p = torch.softmax(seg_logits.float(), dim=-1)[..., cls] * mask.to(torch.float32)
    return (p / p.sum().clamp_min(1e-12)).cpu().numpy()
