"""Text encoders via sentence-transformers (loaded from a local directory, frozen)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError


class SentenceTextEncoder:
    """Texts -> sentence embeddings (the model's own pooling; not normalised unless asked).

    Texts longer than the model's max_seq_length are chunked by tokens (never silently
    truncated); a long text's vector is the token-weighted mean of its chunks' vectors.
    sentence-transformers pads within a batch with attention masks, so a text's vector does
    not depend on what it was batched with (within float tolerance).
    """

    def __init__(self, path: Path, *, alias: str, device: str = "cpu", provenance: dict | None = None,
                 batch_size: int = 64, normalize: bool = False, max_seq_length: int | None = None,
                 autocast: bool = True, **_: object):
        import torch
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: cannot load a sentence-transformers model ({' '.join(str(exc).split())[:200]})") from exc
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        if max_seq_length:
            self.model.max_seq_length = int(max_seq_length)
        self.alias = alias
        self.device = device
        self.batch_size = int(batch_size)
        self.normalize = bool(normalize)
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getdim()
        if not dim:
            dim = int(self.model.encode(["x"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)
        self.max_tokens = int(self.model.max_seq_length or 256)
        self.options = {"normalize": self.normalize, "max_seq_length": self.max_tokens}
        self.provenance = {**(provenance or {"alias": alias}), "dim": self.dim}
        self._torch = torch
        self._autocast = autocast and str(device).startswith("cuda")

    def _chunks(self, text: str) -> list[tuple[str, int]]:
        """(chunk text, token count): the text itself when it fits."""
        tok = self.model.tokenizer
        if tok is None:
            return [(text, 1)]
        budget = max(8, self.max_tokens - 2)
        words = text.split()
        counts = [len(tok.tokenize(" " + w)) or 1 for w in words]
        if sum(counts) <= budget:
            return [(text, max(1, sum(counts)))]
        out, cur, n = [], [], 0
        for w, c in zip(words, counts):
            if cur and n + c > budget:
                out.append((" ".join(cur), n))
                cur, n = [], 0
            cur.append(w)
            n += c
        if cur:
            out.append((" ".join(cur), n))
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pieces, owner, weight = [], [], []
        for i, t in enumerate(texts):
            for chunk, n in self._chunks(t or ""):
                pieces.append(chunk)
                owner.append(i)
                weight.append(n)
        torch = self._torch
        ctx = torch.autocast("cuda", dtype=torch.float16) if self._autocast else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            vecs = self.model.encode(pieces, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=False, show_progress_bar=False)
        vecs = np.asarray(vecs, dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        tot = np.zeros(len(texts))
        for v, i, n in zip(vecs, owner, weight):
            out[i] += n * v
            tot[i] += n
        out /= np.maximum(tot, 1e-9)[:, None]
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)
