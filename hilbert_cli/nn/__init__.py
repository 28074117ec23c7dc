"""The HILBERT network: segment encoders, joint encoder, MoE classifier and the losses.

The model package owns its configuration (open_clip style): `ModelConfig` (nn/config.py, the
`[model]` section of a recipe) and one factory, `create_model(config, d_audio, d_text,
n_classes, d_doc=0)`. Names load on first use, so reading a recipe never imports torch.

- config.py   ModelConfig, the variants
- model.py    HilbertModel (encoders, cross-modal joint encoder, attention pooling)
- moe.py      mixture-of-experts and MLP classifier heads
- wide.py     the wide (linear) path of a wide-and-deep model (ModelConfig.wide)
- losses.py   dual contrastive, CKA, MI-balance and load-balancing losses
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"ModelConfig": "config", "Variant": "config", "VARIANTS": "config", "HilbertModel": "model",
            "create_model": "model"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{mod}", __name__), name)
