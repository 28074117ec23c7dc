"""Bag augmentation for multiple-instance learning (TrainConfig.crop_min, crop_mode).

A recording is a bag of segments with one label. With ~100 bags the attention model memorises
them; training on a random sub-bag each time (a contiguous run of the recording, or a random
subset of its segments) shows it many bags that carry the same label, as is standard for few
bags. Only the training batches' masks change: a crop never adds a segment that is not in the
recording, nor one of another recording, and evaluation sees whole recordings.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["crop_mask"]


def crop_mask(mask: torch.Tensor, rng: np.random.Generator, min_fraction: float, mode: str = "contiguous") -> torch.Tensor:
    """mask [B, L] (True = segment) -> a mask keeping, per row, ceil(f * n) of its n segments,
    f ~ U(min_fraction, 1): a contiguous run of its valid positions (mode contiguous) or a random
    subset of them (subset). At least one segment is kept; min_fraction 1 returns mask unchanged."""
    if min_fraction >= 1.0:
        return mask
    if mode not in ("contiguous", "subset"):
        raise ValueError(f"crop mode must be 'contiguous' or 'subset', not {mode!r}")
    m = mask.detach().bool().cpu().numpy()
    out = np.zeros_like(m)
    for r in range(m.shape[0]):
        pos = np.flatnonzero(m[r])
        n = len(pos)
        if n == 0:
            continue
        k = min(n, max(1, int(np.ceil(rng.uniform(min_fraction, 1.0) * n))))
        if mode == "contiguous":
            s = int(rng.integers(0, n - k + 1))
            keep = pos[s:s + k]
        else:
            keep = pos[rng.choice(n, k, replace=False)]
        out[r, keep] = True
    return torch.from_numpy(out).to(mask.device)
