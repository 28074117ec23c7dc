"""The "wide" path of a wide-and-deep HILBERT (ModelConfig.wide): a linear model of each
recording's mean and standard deviation of its segment features, added to the task logits.

Why: on ~100 real-speech documents the plain linear probe of these statistics (the `linear`
baseline) beats the attention model, whose extra capacity overfits. With this path the model
contains that probe, and the attention path only has to learn what it adds (its output layer
starts at zero, so training starts from the linear model). The statistics are standardised with
the training fold's mean and scale (buffers set by the trainer, saved with the weights), and
the path's L2 penalty (LossConfig.wide_c) plays the part of the probe's C.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WidePath", "pooled_stats"]


def pooled_stats(audio: torch.Tensor, text: torch.Tensor, a_mask: torch.Tensor, t_mask: torch.Tensor) -> torch.Tensor:
    """[B, 2 (d_a + d_t)]: mean and std over each recording's valid segments (audio, then text),
    the features of the `linear` baseline (training/baselines.py)."""
    parts = []
    for x, m in ((audio, a_mask), (text, t_mask)):
        w = m.to(x.dtype).unsqueeze(-1)
        n = w.sum(dim=1).clamp_min(1.0)
        mean = (x * w).sum(dim=1) / n
        var = ((x - mean.unsqueeze(1)) ** 2 * w).sum(dim=1) / n
        parts += [mean, var.clamp_min(1e-12).sqrt()]  # clamp: a finite gradient for one-segment recordings
    return torch.cat(parts, dim=-1)


class WidePath(nn.Module):
    """Standardised pooled statistics -> Linear -> logits [B, C]."""

    def __init__(self, d_audio: int, d_text: int, n_classes: int):
        super().__init__()
        d_in = 2 * (d_audio + d_text)
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(d_in))
        self.linear = nn.Linear(d_in, n_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @torch.no_grad()
    def set_scaler(self, stats: torch.Tensor) -> None:
        """Fit the standardisation on training recordings' pooled_stats [N, d_in]."""
        s = stats.double()
        self.mean.copy_(s.mean(0).to(self.mean.dtype))
        self.scale.copy_((1.0 / s.std(0, unbiased=False).clamp_min(1e-6)).to(self.scale.dtype))

    def forward(self, audio, text, a_mask, t_mask) -> torch.Tensor:
        x = (pooled_stats(audio, text, a_mask, t_mask) - self.mean) * self.scale
        return self.linear(x.to(self.linear.weight.dtype))

    def penalty(self) -> torch.Tensor:
        """0.5 * ||W||^2 (no bias), as in logistic regression's L2 term."""
        return 0.5 * self.linear.weight.float().pow(2).sum()
