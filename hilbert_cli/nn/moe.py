"""Mixture-of-experts classifier (paper: 8 experts, MLP 32-32, softmax gate, head 32-16-C)."""

from __future__ import annotations

import torch
from torch import nn

from .dropout import Dropout
from .losses import load_balance_loss


class MoEClassifier(nn.Module):
    """Dense softmax gate (top_k = 0) or sparse top-k gate with a load-balancing term.

    forward(x [B, in]) -> (logits [B, C], gate weights [B, E] (rows sum to 1), aux loss scalar)
    """

    def __init__(self, in_dim: int, n_classes: int, *, n_experts: int = 8, expert_hidden: int = 32,
                 head_hidden: int = 16, top_k: int = 0, dropout: float = 0.1):
        super().__init__()
        self.n_experts = n_experts
        self.top_k = top_k
        self.gate = nn.Linear(in_dim, n_experts)
        # all experts in one batched weight tensor: [E, in, h] and [E, h, h]
        self.w1 = nn.Parameter(torch.empty(n_experts, in_dim, expert_hidden))
        self.b1 = nn.Parameter(torch.zeros(n_experts, expert_hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, expert_hidden, expert_hidden))
        self.b2 = nn.Parameter(torch.zeros(n_experts, expert_hidden))
        for w in (self.w1, self.w2):
            for e in range(n_experts):
                nn.init.kaiming_uniform_(w.data[e].T, a=5 ** 0.5)
        self.act = nn.GELU()
        self.drop = Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(expert_hidden, head_hidden), nn.GELU(), Dropout(dropout),
                                  nn.Linear(head_hidden, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gate_logits = self.gate(x)
        probs = torch.softmax(gate_logits.float(), dim=-1)
        if self.top_k and self.top_k < self.n_experts:
            top = gate_logits.topk(self.top_k, dim=-1).indices
            assign = torch.zeros_like(probs).scatter_(1, top, 1.0)
            masked = gate_logits.float().masked_fill(assign == 0, float("-inf"))
            weights = torch.softmax(masked, dim=-1)
            aux = load_balance_loss(probs, assign)
        else:
            weights = probs
            aux = probs.new_zeros(())
        h = self.act(torch.einsum("bi,eih->beh", x, self.w1) + self.b1)
        h = self.drop(h)
        h = self.act(torch.einsum("beh,ehk->bek", h, self.w2) + self.b2)
        mixed = (weights.to(h.dtype).unsqueeze(-1) * h).sum(dim=1)
        return self.head(self.drop(mixed)), weights, aux


class MLPClassifier(nn.Module):
    """Plain MLP head (variant ``transfer``): in -> 32 -> 16 -> C; same return shape as MoE."""

    def __init__(self, in_dim: int, n_classes: int, *, hidden: int = 32, head_hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), Dropout(dropout),
                                 nn.Linear(hidden, head_hidden), nn.GELU(), Dropout(dropout),
                                 nn.Linear(head_hidden, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, logits.new_ones(x.shape[0], 1), logits.new_zeros(())
