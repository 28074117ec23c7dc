"""The HILBERT model (paper section 2; docs/ARCHITECTURE.md, "The HILBERT model").

Inputs per recording: a sequence of audio segment embeddings [L, d_a] and text segment
embeddings [L_t, d_t] with boolean masks (True = a real segment). Padded segments never
change any output: attention ignores padded keys and pooling ignores padded positions.

    audio -> Linear(d_a, d) -> self-attention blocks -> attention pooling -> h_a
    text  -> Linear(d_t, d) -> self-attention blocks -> attention pooling -> h_t
    joint: cross-attention audio->text and text->audio, concatenated along the sequence,
           Linear(d, d) -> self-attention blocks -> attention pooling -> h_j
    shared projector g: z_m = g(h_m), m in {a, t, j}
    classifier on concat(h_a, h_t, h_j[, doc]): MoE (8 experts 32-32, head 32-16-C) or MLP;
    doc = the recording's standardised document statistics when config.doc_stats (d_doc > 0)
    wide (config.wide): logits += Linear(standardised mean + std of the input segments) (nn/wide.py)
    segment vote (config.segment_vote): logits += log mean_s softmax(Linear(segment s of the joint
    sequence)) (nn/vote.py); seg_logits / seg_mask go to the per-segment loss

Variants ``transfer`` / ``transfer_moe`` replace the attention encoders by masked mean
pooling of the frozen features followed by a per-modality projection; h_j is a projection
of concat(h_a, h_t). The forward dict always has the same keys.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .config import ModelConfig
from .dropout import Dropout
from .moe import MLPClassifier, MoEClassifier
from .vote import SegmentVote
from .wide import WidePath

__all__ = ["HilbertModel", "create_model", "masked_mean"]


def _fix_mask(mask: torch.Tensor) -> torch.Tensor:
    """A recording with no valid segment would give NaN attention: treat position 0 as valid."""
    mask = mask.bool()
    first = torch.zeros_like(mask)
    first[..., 0] = True
    # branch-free (no data-dependent control flow, so the model also runs under torch.func.vmap)
    return mask | (first & ~mask.any(dim=-1, keepdim=True))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


class Attention(nn.Module):
    """Multi-head attention with a key padding mask (True = attend)."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.h = n_heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor) -> torch.Tensor:
        b, lq, d = x.shape
        lk = ctx.shape[1]
        q = self.q(x).view(b, lq, self.h, d // self.h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, lk, 2, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        # additive float mask [B, 1, 1, Lk] (0 = attend, -inf = padding), broadcast over heads/queries
        if ctx_mask.dtype == torch.bool:
            ctx_mask = torch.zeros_like(ctx_mask, dtype=q.dtype).masked_fill(~ctx_mask, float("-inf"))
        # no dropout on the attention weights: on CPU its random mask over [B, H, Lq, Lk] costs more
        # than the attention itself; the residual and feed-forward dropouts regularise.
        # explicit attention: for the small head sizes used here it is faster on CPU than the
        # fused kernels, and identical in value
        # scale q (L x dh) rather than the scores (L x L)
        scores = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-1, -2) + ctx_mask[:, None, None, :].to(q.dtype)
        o = torch.softmax(scores, dim=-1) @ v
        return self.out(o.transpose(1, 2).reshape(b, lq, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x), LN(ctx)); x + FFN(LN(x))."""

    def __init__(self, d: int, n_heads: int, dropout: float, cross: bool = False):
        super().__init__()
        self.cross = cross
        self.ln_q = nn.LayerNorm(d)
        self.ln_kv = nn.LayerNorm(d) if cross else None
        self.attn = Attention(d, n_heads, dropout)
        self.ln_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), Dropout(dropout), nn.Linear(2 * d, d))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, ctx: Optional[torch.Tensor] = None,
                ctx_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q = self.ln_q(x)
        if self.cross:
            kv, kv_mask = self.ln_kv(ctx), ctx_mask
        else:
            kv, kv_mask = q, mask
        x = x + self.drop(self.attn(q, kv, kv_mask))
        return x + self.drop(self.ff(self.ln_ff(x)))


class AttentionPool(nn.Module):
    """Additive attention pooling over valid positions -> ([B, d], weights [B, L])."""

    def __init__(self, d: int):
        super().__init__()
        # no bias on the last layer: softmax over positions ignores a shift (its gradient is 0)
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        self.ln = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.score(x).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, dim=-1)
        return self.ln((w.to(x.dtype).unsqueeze(-1) * x).sum(dim=1)), w


class SequenceEncoder(nn.Module):
    def __init__(self, d_in: int, d: int, n_heads: int, n_layers: int, dropout: float):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(d_in, d), nn.LayerNorm(d), Dropout(dropout))
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for blk in self.blocks:
            x = blk(x, mask)
        return x


class HilbertModel(nn.Module):
    """One model per task. See the module docstring for the architecture."""

    def __init__(self, config: ModelConfig, d_audio: int, d_text: int, n_classes: int, d_doc: int = 0):
        super().__init__()
        self.config = config
        self.d_audio, self.d_text, self.n_classes, self.d_doc = d_audio, d_text, n_classes, int(d_doc)
        c = config
        d = c.d_model
        self.pooled = c.variant in ("transfer", "transfer_moe")
        if self.pooled:
            self.proj_a = nn.Sequential(nn.Linear(d_audio, d), nn.GELU(), nn.LayerNorm(d), Dropout(c.dropout))
            self.proj_t = nn.Sequential(nn.Linear(d_text, d), nn.GELU(), nn.LayerNorm(d), Dropout(c.dropout))
            self.proj_j = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.LayerNorm(d))
        else:
            self.enc_a = SequenceEncoder(d_audio, d, c.n_heads, c.n_layers, c.dropout)
            self.enc_t = SequenceEncoder(d_text, d, c.n_heads, c.n_layers, c.dropout)
            self.pool_a = AttentionPool(d)
            self.pool_t = AttentionPool(d)
            self.a2t = Block(d, c.n_heads, c.dropout, cross=True)
            self.t2a = Block(d, c.n_heads, c.dropout, cross=True)
            self.joint_proj = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
            self.joint_blocks = nn.ModuleList(Block(d, c.n_heads, c.dropout) for _ in range(c.n_layers))
            self.pool_j = AttentionPool(d)
        self.projector = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, c.latent_dim))
        if c.variant == "transfer":
            self.classifier = MLPClassifier(3 * d + self.d_doc, n_classes, hidden=c.expert_hidden, head_hidden=c.head_hidden,
                                            dropout=c.dropout)
        else:
            self.classifier = MoEClassifier(3 * d + self.d_doc, n_classes, n_experts=c.n_experts, expert_hidden=c.expert_hidden,
                                            head_hidden=c.head_hidden, top_k=c.top_k, dropout=c.dropout)
        self.wide = WidePath(d_audio, d_text, n_classes) if c.wide else None
        self.vote = SegmentVote(d, n_classes) if c.segment_vote else None
        if self.wide is not None:  # wide and deep: training starts from the linear model
            last = self.classifier.net[-1] if c.variant == "transfer" else self.classifier.head[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
                text_mask: Optional[torch.Tensor] = None, *, doc: Optional[torch.Tensor] = None,
                drop_modality: Optional[str] = None) -> dict:
        """audio [B, L, d_a], text [B, L_t, d_t], mask [B, L] (True = segment), text_mask [B, L_t]
        (defaults to mask), doc [B, d_doc] (standardised document statistics; needed when d_doc > 0).

        drop_modality="audio" | "text" masks one modality at evaluation time: its inputs are
        replaced by zeros (= the training-fold mean after standardisation), and so are the
        document statistics, so only the other modality carries information (the audio-only /
        text-only check).

        Returns a dict: logits [B, C], h_a h_t h_j [B, d], z_a z_t z_j [B, latent], gate [B, E]
        (MoE gate weights; ones [B, 1] for the MLP head), aux_loss (load balancing, scalar),
        attn_a attn_t attn_j (pooling weights; None for the transfer variants); with config.wide
        also wide_penalty (0.5 ||W||^2 of the wide path, scalar); with config.segment_vote also
        seg_logits [B, L_s, C] and seg_mask [B, L_s] (the voting segments).
        """
        a_mask = _fix_mask(mask)
        t_mask = _fix_mask(text_mask if text_mask is not None else mask)
        if drop_modality in ("audio", "text") and doc is not None:
            doc = torch.zeros_like(doc)  # timing statistics are neither modality: out of one-modality checks
        if drop_modality == "audio":
            audio = torch.zeros_like(audio)
        elif drop_modality == "text":
            text = torch.zeros_like(text)
        elif drop_modality not in (None, "", "none"):
            raise ValueError(f"drop_modality must be None, 'audio' or 'text', not {drop_modality!r}")
        out: dict = {}
        if self.pooled:
            h_a = self.proj_a(masked_mean(audio, a_mask))
            h_t = self.proj_t(masked_mean(text, t_mask))
            h_j = self.proj_j(torch.cat([h_a, h_t], dim=-1))
            out.update(attn_a=None, attn_t=None, attn_j=None)
            if self.vote is not None:  # the per-segment projections (audio and text are paired)
                xj, j_mask = self.proj_j(torch.cat([self.proj_a(audio), self.proj_t(text)], dim=-1)), a_mask
        else:
            xa = self.enc_a(audio, a_mask)
            xt = self.enc_t(text, t_mask)
            h_a, w_a = self.pool_a(xa, a_mask)
            h_t, w_t = self.pool_t(xt, t_mask)
            a2t = self.a2t(xa, a_mask, xt, t_mask)  # audio queries attend to text
            t2a = self.t2a(xt, t_mask, xa, a_mask)  # text queries attend to audio
            xj = self.joint_proj(torch.cat([a2t, t2a], dim=1))
            j_mask = torch.cat([a_mask, t_mask], dim=1)
            for blk in self.joint_blocks:
                xj = blk(xj, j_mask)
            h_j, w_j = self.pool_j(xj, j_mask)
            out.update(attn_a=w_a, attn_t=w_t, attn_j=w_j)
        z = self.projector(torch.stack([h_a, h_t, h_j], dim=0))
        pooled = [h_a, h_t, h_j]
        if self.d_doc:
            if doc is None or doc.shape[-1] != self.d_doc:
                raise ValueError(f"this model takes {self.d_doc} document statistics per recording "
                                 f"(got {None if doc is None else doc.shape[-1]})")
            pooled.append(doc.to(h_a.dtype))
        logits, gate, aux = self.classifier(torch.cat(pooled, dim=-1))
        if self.wide is not None:
            logits = logits + self.wide(audio, text, a_mask, t_mask).to(logits.dtype)
            out["wide_penalty"] = self.wide.penalty()
        if self.vote is not None:
            voted, seg = self.vote(xj, j_mask)
            logits = logits + voted.to(logits.dtype)
            out.update(seg_logits=seg, seg_mask=j_mask)
        out.update(logits=logits, h_a=h_a, h_t=h_t, h_j=h_j, z_a=z[0], z_t=z[1], z_j=z[2], gate=gate, aux_loss=aux)
        return out


def create_model(config: ModelConfig, d_audio: int, d_text: int, n_classes: int, d_doc: int = 0) -> HilbertModel:
    """The one factory: a HilbertModel for features of widths d_audio / d_text, n_classes outputs
    and d_doc document statistics (0: none). Training, checkpoints and scoring all build here."""
    return HilbertModel(config, d_audio, d_text, n_classes, d_doc)
