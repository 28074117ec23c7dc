"""Shared helpers for the model/training tests: tiny configs and synthetic feature files."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest


def accelerators() -> list[str]:
    """The GPU devices of this machine ([] on CI): tests parametrised over them run where one exists."""
    import torch

    return ["cuda"] if torch.cuda.is_available() else []


def tiny_model(variant: str = "hilbert", **kw):
    from hilbert_cli.nn.config import ModelConfig

    base = dict(variant=variant, d_model=16, latent_dim=64, n_heads=2, dropout=0.0, n_experts=4,
                expert_hidden=16, head_hidden=8)
    base.update(kw)
    return ModelConfig(**base)


def tiny_train(**kw):
    from hilbert_cli.training.config import TrainConfig

    base = dict(n_folds=3, batch_size=16, max_epochs=30, patience=6, min_epochs=8, lr=3e-3, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run with n torch threads (small models are faster on one thread), then restore."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture
def one_thread():
    with torch_threads(1):
        yield


def synthetic_files(tmp_path: Path, n: int = 40, **kw) -> tuple[Path, Path]:
    """A small synthetic dataset written as features.parquet + labels.csv (with a group column)."""
    from hilbert_cli.training.synthetic import make_synthetic, write_synthetic

    kw.setdefault("tasks", {"a": "audio", "t": "text"})
    kw.setdefault("n_groups", 10)
    ds = make_synthetic(n, d_audio=8, d_text=6, min_segments=3, max_segments=7, **kw)
    return write_synthetic(ds, tmp_path)


def assert_saved_model_scores_as_trained(fitted, data, n: int, root: Path, run_name: str) -> None:
    """Save fitted (task "y") under root/models/y, load the directory as `hilbert score` does and
    check that its first n recordings get the probabilities the fitted model gave them."""
    import numpy as np

    from hilbert_cli.training.checkpoint import load_model_dir, save_task_model

    idx = np.arange(n)
    expected = fitted.predict_proba(data, idx)
    save_task_model(fitted, root / "models" / "y", task="y", run_name=run_name, d_audio=data.d_audio,
                    d_text=data.d_text, features_metadata={})
    bundle = load_model_dir(root)
    for row, i in enumerate(idx):
        (pred,) = bundle.predict(data.audio[i][data.mask[i]].numpy(), data.text[i][data.mask[i]].numpy())
        np.testing.assert_allclose(pred.probs, expected[row], atol=1e-5)
