"""Document statistics as the model's side input: they reach the classifier, survive a
save/load, and are required where a model was trained with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures_train import tiny_model, tiny_train, torch_threads
from hilbert_cli.embed.doc_stats import DocStats, feature_vector
from hilbert_cli.errors import InputError
from hilbert_cli.training.data import FeatureDataset
from hilbert_cli.training.preprocess import Preprocessor
from hilbert_cli.training.metrics import macro_auc


def _stats(rng: np.random.Generator, n: int) -> list[DocStats]:
    return [DocStats(speaking_time_s=float(rng.uniform(60, 900)), n_words=int(rng.integers(50, 2000)),
                     n_segments=int(rng.integers(5, 40)), words_per_minute=float(rng.uniform(80, 180)),
                     pause_count=int(rng.integers(0, 200)), pause_mean_s=float(rng.uniform(0.3, 2.0)),
                     turn_count=int(rng.integers(1, 50)), share_of_speech=float(rng.uniform(0.2, 0.9)))
            for _ in range(n)]


def _dataset(n: int = 160, seed: int = 0):
    """Segment features are pure noise; the label is whether the participant spoke slowly."""
    rng = np.random.default_rng(seed)
    stats = _stats(rng, n)
    lens = rng.integers(3, 8, n)
    audio = [rng.normal(size=(k, 6)).astype(np.float32) for k in lens]
    text = [rng.normal(size=(k, 5)).astype(np.float32) for k in lens]
    label = ["slow" if s.words_per_minute < 130 else "fast" for s in stats]
    doc = np.stack([feature_vector(s) for s in stats])
    ds = FeatureDataset.from_arrays([f"r{i}" for i in range(n)], audio, text, {"rate": label}, doc=doc)
    return ds, stats


def _fit(ds, train_idx, *, doc_stats: bool):
    from hilbert_cli.training.trainer import fit_model

    with torch_threads(1):
        return fit_model(ds, "rate", train_idx, tiny_model("transfer", doc_stats=doc_stats, dropout=0.1),
                         tiny_train(batch_size=16), n_epochs=30, seed=0, keep_prepared=True)


def test_statistics_reach_the_classifier():
    ds, _ = _dataset()
    train, test = np.arange(120), np.arange(120, ds.n)
    y = ds.labels["rate"][test]
    with_stats = macro_auc(y, _fit(ds, train, doc_stats=True).predict_proba(ds, test))
    without = macro_auc(y, _fit(ds, train, doc_stats=False).predict_proba(ds, test))
    assert with_stats > 0.85, with_stats
    assert without < 0.75, without  # the segment features carry nothing about the label


def test_saved_model_needs_and_uses_the_statistics(tmp_path: Path):
    from hilbert_cli.training.checkpoint import load_model_dir, save_task_model

    ds, stats = _dataset()
    fitted = _fit(ds, np.arange(120), doc_stats=True)
    idx = np.arange(120, 128)
    expected = fitted.predict_proba(ds, idx)
    save_task_model(fitted, tmp_path / "models" / "rate", task="rate", run_name="docs", d_audio=6, d_text=5,
                    features_metadata={})
    bundle = load_model_dir(tmp_path)
    assert bundle.needs_doc_stats
    for row, i in enumerate(idx):
        a, t = ds.audio[i][ds.mask[i]].numpy(), ds.text[i][ds.mask[i]].numpy()
        (pred,) = bundle.predict(a, t, doc_stats=stats[i])
        np.testing.assert_allclose(pred.probs, expected[row], atol=1e-5)
    with pytest.raises(ValueError, match="document statistics"):
        bundle.predict(a, t)


def test_doc_stats_on_features_without_them_is_one_clear_error():
    ds, _ = _dataset(n=12)
    ds.doc = None
    with pytest.raises(InputError, match="no document statistics"):
        Preprocessor.fit(ds, np.arange(12), doc_stats=True)
    assert Preprocessor.fit(ds, np.arange(12)).d_doc == 0


def test_saving_the_same_model_twice_gives_the_same_bytes_and_model_id(tmp_path: Path):
    """Retraining with the same seed must give the same model_id, or score never reuses its
    cached parts: the weights file's bytes may not depend on a map's iteration order."""
    import hashlib

    from hilbert_cli.training.checkpoint import load_model_dir, save_task_model

    ds, _ = _dataset(n=24)
    fitted = _fit(ds, np.arange(24), doc_stats=True)
    digests, ids = set(), set()
    for i in range(8):
        run = tmp_path / f"run{i}"
        save_task_model(fitted, run / "models" / "rate", task="rate", run_name="docs", d_audio=6, d_text=5,
                        features_metadata={})
        digests.add(hashlib.sha256((run / "models" / "rate" / "model.safetensors").read_bytes()).hexdigest())
        ids.add(load_model_dir(run).model_id)
    assert len(digests) == 1 and len(ids) == 1, (digests, ids)
