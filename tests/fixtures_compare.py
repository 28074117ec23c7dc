"""Fixtures for the compare / CLAP tests: a tiny random CLAP checkpoint saved locally, and
synthetic out-of-fold predictions for the statistics tests. No network, nothing downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CORPUS = [
    "hello world this is a tiny corpus for the clap test tokenizer",
    "she said she was worried about school and her friends",
    "we went to the park and it was a lovely sunny day",
]


def make_tiny_clap(dest: Path, *, seed: int = 0, projection_dim: int = 16) -> Path:
    """Save a randomly initialised, tiny CLAP model + feature extractor + RoBERTa BPE tokenizer.

    Same file layout as laion/clap-htsat-unfused (config.json, model.safetensors,
    preprocessor_config.json, tokenizer files), so it loads exactly like the real checkpoint.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, RobertaTokenizer

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS * 3, vocab_size=300, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False,
    )
    tmp = dest / "_bpe"
    tmp.mkdir(exist_ok=True)
    bpe.save_model(str(tmp))
    vocab = json.loads((tmp / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (tmp / "merges.txt").read_text().splitlines() if line and not line.startswith("#")]
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    tok = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=64)

    audio = dict(
        hidden_size=16, patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[1, 2],
        window_size=4, projection_dim=projection_dim, spec_size=256, num_mel_bins=64,
    )
    text = dict(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, projection_dim=projection_dim, max_position_embeddings=66,
    )
    cfg = ClapConfig(text_config=text, audio_config=audio, projection_dim=projection_dim)
    torch.manual_seed(seed)
    model = ClapModel(cfg).eval()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(str(dest))
    # the unfused LAION checkpoint's extractor settings
    ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad", frequency_min=50).save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    return dest


def tone(seconds: float, freq: float = 220.0, sr: int = 16_000, seed: int = 0) -> np.ndarray:
    """A 16 kHz test clip: a sine plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def synthetic_predictions(n: int = 200, n_classes: int = 2, signal: float = 1.0, seed: int = 0):
    """(y, probs) with probs that carry `signal` about y (0 = none)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    if n_classes == 2:
        y[:2] = [0, 1]
    else:
        y[:n_classes] = np.arange(n_classes)
    logits = rng.standard_normal((n, n_classes))
    logits[np.arange(n), y] += signal
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return y, p


def write_recipe(path: Path, *, body: str) -> Path:
    """Write a recipe TOML (body is the whole text) and return its path."""
    path = Path(path)
    path.write_text(body)
    return path


#: the done-when task: only the interaction of audio and text carries the label
INTERACTION_RECIPE = """
name = "interaction"
output_dir = "{out}"
variants = ["hilbert"]

[data.synthetic]
n_recordings = 200
min_segments = 4
max_segments = 8
d_audio = 8
d_text = 8
strength = 2.0
seed = 0

[[tasks]]
name = "inter"
signal = "interaction"
n_classes = 2

[model]
d_model = 16
latent_dim = 64
n_heads = 2

[train]
n_folds = 4
max_epochs = 30
patience = 10
threads = 1
seed = 0

[compare.ablation]
enabled = false

[compare.sweep]
enabled = false

[compare.stats]
n_boot = 500
"""


def tiny_dataset(n: int = 36, seed: int = 0, tasks=None):
    """A very small synthetic FeatureDataset for plumbing tests (nothing has to be learnt)."""
    from hilbert_cli.training.synthetic import make_synthetic

    return make_synthetic(n, tasks=tasks or {"aud": "audio"}, d_audio=6, d_text=5, min_segments=2, max_segments=4,
                          seed=seed)


def tiny_train_config(**kw):
    from hilbert_cli.training.config import TrainConfig

    base = dict(n_folds=3, max_epochs=1, patience=0, batch_size=16, threads=1, seed=0, val_fraction=0.0)
    base.update(kw)
    return TrainConfig(**base)


def tiny_model_config(**kw):
    from hilbert_cli.nn.config import ModelConfig

    base = dict(d_model=8, latent_dim=64, n_heads=1, n_experts=2, expert_hidden=4, head_hidden=4)
    base.update(kw)
    return ModelConfig(**base)
