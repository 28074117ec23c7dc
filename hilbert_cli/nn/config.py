"""The HILBERT model's configuration, owned by the model package (`[model]` of a recipe).

`ModelConfig` is what `create_model` (hilbert_cli/nn/__init__.py) builds a network from;
training (hilbert_cli/training/config.py) holds only the loss and optimisation settings. Unknown
keys are errors (``extra="forbid"``), so a typo in a recipe names the key. No torch here: the
recipe loader and `hilbert --help` read this module.
"""

from __future__ import annotations

from typing import Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelConfig", "Variant", "VARIANTS"]

Variant = Literal["transfer", "transfer_moe", "contrastive_moe", "hilbert"]
#: every variant, in the paper's order (the one list: read from Variant)
VARIANTS: tuple[str, ...] = get_args(Variant)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    """Architecture (docs/ARCHITECTURE.md, "The HILBERT model")."""

    #: transfer: mean-pooled frozen features + MLP head; transfer_moe: the same with the MoE
    #: classifier; contrastive_moe: attention encoders + MoE, plain audio-text contrastive loss;
    #: hilbert: attention encoders + joint encoder + MoE, dual contrastive + CKA + MI losses.
    variant: Variant = "hilbert"
    #: width of the segment encoders (projection of d_a / d_t to d)
    d_model: int = Field(128, ge=8, le=2048)
    #: output size of the shared projector g (z_a, z_t, z_j)
    latent_dim: Literal[64, 128, 256] = 128
    n_heads: int = Field(4, ge=1, le=64)
    #: self-attention blocks per modality and in the joint encoder
    n_layers: int = Field(1, ge=1, le=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    n_experts: int = Field(8, ge=1, le=64)
    #: expert MLP width (two layers of this width: 32-32 in the paper)
    expert_hidden: int = Field(32, ge=4, le=1024)
    #: classifier head widths after the experts (32-16-C in the paper)
    head_hidden: int = Field(16, ge=2, le=1024)
    #: 0 = dense softmax gate (paper); k > 0 = sparse top-k gate with a load-balancing term
    top_k: int = Field(0, ge=0)
    #: standardise every input dimension with statistics of the training fold
    standardize: bool = True
    #: project each modality onto its top-k principal components fitted on the training fold
    #: (speed knob for wide backbones; None = feed the full d_a / d_t to the learnt projection)
    input_pca: Optional[int] = Field(None, ge=2)
    #: document statistics (speaking time, rate, pauses, turns: hilbert_cli/embed/doc_stats.py),
    #: standardised on the training fold, as a side input concatenated to h_a, h_t, h_j before
    #: the classifier (every variant)
    doc_stats: bool = False
    #: wide-and-deep (nn/wide.py): a linear model of each recording's mean + std of its segment
    #: features is added to the logits and the attention/MoE output starts at zero, so the model
    #: contains the `linear` baseline and learns what attention adds (small data; its L2 is
    #: LossConfig.wide_c)
    wide: bool = False
    #: segment vote (nn/vote.py): a linear head on every contextualised segment of the joint
    #: sequence (the per-segment projections for the transfer variants); the log of its mean class
    #: probabilities is added to the logits, and each segment is also trained on its recording's
    #: label (LossConfig.segment_vote). Long-recording labels that are a vote of their parts
    #: (README "Accuracy on real speech")
    segment_vote: bool = False

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k ({self.top_k}) must be <= n_experts ({self.n_experts})")
        return self
