"""Per-fold preprocessing: standardisation and optional PCA fitted on training recordings only.

Fitted from the sufficient statistics a FeatureDataset caches (training/data.py), so a fold
costs one small eigendecomposition at most; stored with the weights (``prep.*`` tensors of
model.safetensors), so scoring applies exactly the map the model was trained with.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import torch

from ..errors import InputError
from .data import FeatureDataset

__all__ = ["Preprocessor", "top_eigenvectors"]


def top_eigenvectors(cov: torch.Tensor, k: int, n_iter: int = 5, seed: int = 0) -> torch.Tensor:
    """Top-k eigenvectors of a symmetric PSD matrix [d, d] -> [d, k] (randomized subspace
    iteration in float32, deterministic; much cheaper than a full eigh for k << d)."""
    d = cov.shape[0]
    if k >= d // 2:
        evals, evecs = torch.linalg.eigh(cov)
        return evecs[:, -k:].flip(1)
    c = cov.float()
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(d, min(d, k + 48), generator=g)
    for _ in range(n_iter):
        q, _ = torch.linalg.qr(c @ q)
    evals, small = torch.linalg.eigh((q.T @ c @ q).double())
    vecs = (q.double() @ small.flip(1)[:, :k])
    # a deterministic sign per axis
    signs = torch.sign(vecs[vecs.abs().argmax(dim=0), torch.arange(k)])
    return vecs * torch.where(signs == 0, torch.ones_like(signs), signs)


class Preprocessor:
    """Per-modality affine map fitted on training recordings: x -> ((x - mean) / std) @ basis.

    basis is the top-k principal axes (input_pca=k) or the identity. Fitted from cached
    sufficient statistics, so a fold costs one small eigendecomposition at most.
    """

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    @property
    def d_audio(self) -> int:
        t = self.tensors
        return int(t["audio_basis"].shape[1]) if "audio_basis" in t else int(t["audio_mean"].shape[0])

    @property
    def d_text(self) -> int:
        t = self.tensors
        return int(t["text_basis"].shape[1]) if "text_basis" in t else int(t["text_mean"].shape[0])

    @property
    def d_doc(self) -> int:
        """Width of the document-statistics side input (0: none fitted)."""
        return int(self.tensors["doc_mean"].shape[0]) if "doc_mean" in self.tensors else 0

    @classmethod
    def fit(cls, ds: FeatureDataset, idx: np.ndarray, *, standardize: bool = True,
            pca: Optional[int] = None, doc_stats: bool = False) -> "Preprocessor":
        """doc_stats: also standardise the dataset's document statistics (an InputError when it has none)."""
        idx = np.asarray(idx, np.int64)
        out: dict[str, torch.Tensor] = {}
        if doc_stats:
            if ds.doc is None:
                raise InputError("[model] doc_stats = true, but the features carry no document statistics "
                                 "(made by an older `hilbert embed`, or by hand): re-run `hilbert embed`, "
                                 "or set doc_stats = false")
            d = ds.doc[torch.as_tensor(idx)].double()
            out["doc_mean"] = d.mean(0).float()
            out["doc_scale"] = (1.0 / d.std(0, unbiased=False).clamp_min(1e-6)).float()
        for m in ("audio", "text"):
            s, ss, cnt = ds._rec_stats(m)
            n = cnt[idx].sum().clamp_min(1.0)
            mean = s[idx].sum(0) / n
            var = (ss[idx].sum(0) / n - mean * mean).clamp_min(0.0)
            d = mean.shape[0]
            std = var.sqrt().clamp_min(1e-6) if standardize else torch.ones_like(mean)
            out[f"{m}_mean"] = mean.float()
            out[f"{m}_scale"] = (1.0 / std).float()
            if pca and pca < d:
                cov = ds.gram(m, idx) / n - torch.outer(mean, mean)
                cov = cov / torch.outer(std, std)
                out[f"{m}_basis"] = top_eigenvectors(cov, pca).float().contiguous()
        return cls(out)

    def transform_one(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        t = self.tensors
        mean, scale = t[f"{modality}_mean"].to(x.device), t[f"{modality}_scale"].to(x.device)
        basis = t.get(f"{modality}_basis")
        if basis is not None:
            w = basis.to(x.device) * scale.unsqueeze(1)
            return x @ w - mean @ w  # = (x - mean) @ w without a centred copy of x
        return (x - mean) * scale

    def transform_doc(self, doc: Optional[torch.Tensor], n: int) -> torch.Tensor:
        """Standardised document statistics [n, d_doc] ([n, 0] when this model takes none)."""
        if not self.d_doc:
            return torch.zeros((n, 0), dtype=torch.float32)
        t = self.tensors
        return ((doc.float() - t["doc_mean"]) * t["doc_scale"]).contiguous()

    def transform(self, audio: torch.Tensor, text: torch.Tensor, mask: Optional[torch.Tensor] = None):
        a = self.transform_one("audio", audio)
        t = self.transform_one("text", text)
        if mask is not None:
            w = mask.unsqueeze(-1).to(a.dtype)
            a, t = a * w, t * w
        return a.contiguous(), t.contiguous()

    def state_dict(self, prefix: str = "prep.") -> dict[str, torch.Tensor]:
        return {prefix + k: v.contiguous() for k, v in self.tensors.items()}

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], prefix: str = "prep.") -> "Preprocessor":
        return cls({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
