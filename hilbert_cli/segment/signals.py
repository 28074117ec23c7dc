"""Per-unit text signals: sentiment (VADER), polarity + subjectivity (TextBlob's Pattern
lexicon), and an optional emotion classifier (emoDistilRoBERTa) when it is available locally.

VADER and the Pattern lexicon ship inside their PyPI packages: no corpus download, no hub.
The emotion classifier is never downloaded by segmentation: `emotion="auto"` uses it only
when the registry finds it on disk (models dir, HF cache, or a path).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelUnavailable


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _pattern():
    # PatternAnalyzer reads textblob/en/en-sentiment.xml (inside the wheel); no NLTK corpora.
    from textblob.en.sentiments import PatternAnalyzer

    return PatternAnalyzer()


@dataclass
class TextSignals:
    sentiment: np.ndarray  # [n] VADER compound in [-1, 1]
    polarity: np.ndarray  # [n] in [-1, 1]
    subjectivity: np.ndarray  # [n] in [0, 1]
    emotion: np.ndarray | None = None  # [n, k] probabilities, or None
    emotion_labels: list[str] | None = None


def lexicon_signals(texts: list[str]) -> TextSignals:
    vader, pattern = _vader(), _pattern()
    n = len(texts)
    sent = np.zeros(n, dtype=np.float64)
    pol = np.zeros(n, dtype=np.float64)
    subj = np.zeros(n, dtype=np.float64)
    for i, t in enumerate(texts):
        sent[i] = vader.polarity_scores(t)["compound"]
        s = pattern.analyze(t)
        pol[i], subj[i] = s.polarity, s.subjectivity
    return TextSignals(sent, pol, subj)


class EmotionClassifier:
    """A transformers sequence classifier (text -> emotion distribution), frozen, batched."""

    def __init__(self, path: Path, *, alias: str, provenance: dict, device: str = "cpu", batch_size: int = 32):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot load the emotion classifier ({' '.join(str(exc).split())[:200]})") from exc
        self.model.eval().requires_grad_(False).to(device)
        self.device = device
        self.batch_size = batch_size
        self.alias = alias
        self.provenance = provenance
        cfg = self.model.config
        self.labels = [str(cfg.id2label.get(i, i)) for i in range(cfg.num_labels)]
        self._torch = torch

    def predict(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        max_len = min(512, int(getattr(self.tokenizer, "model_max_length", 512) or 512))
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().numpy()
                out[idx] = probs
        return out


def load_emotion(spec: str, device: str = "cpu") -> EmotionClassifier | None:
    """`spec` = "off" -> None; "auto" -> emoDistilRoBERTa when on disk, else None; else alias/path (must load)."""
    from ..registry import locate, resolve

    if spec == "off":
        return None
    if spec == "auto":
        try:
            found = locate("emoDistilRoBERTa")
        except ModelUnavailable:
            return None
        if found.where not in {"path", "models_dir", "hf_cache"} or found.path is None:
            return None
        try:
            return EmotionClassifier(found.path, alias=found.spec.alias, provenance=found.provenance(), device=device)
        except ConfigError:
            return None
    found = resolve(spec)
    if found.path is None:
        raise ModelUnavailable(f"emotion model '{spec}' has no local directory")
    return EmotionClassifier(found.path, alias=found.spec.alias, provenance=found.provenance(), device=device)


def emotion_provenance(spec: str) -> dict | None:
    """Provenance of the classifier `load_emotion(spec)` would use, without loading it."""
    from ..registry import locate

    if spec == "off":
        return None
    try:
        found = locate("emoDistilRoBERTa" if spec == "auto" else spec)
    except ModelUnavailable:
        return None
    if found.where not in {"path", "models_dir", "hf_cache"} or found.path is None:
        return None
    return found.provenance()
