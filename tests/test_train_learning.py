"""Learning on synthetic features: signal carried by audio only, text only, or only by the
audio x text interaction is learnt (out-of-fold AUC well above chance); random labels stay
near 0.5 (no leakage across folds); CV is deterministic for a seed."""

import numpy as np
import pytest

from hilbert_cli.training.cv import run_cv
from hilbert_cli.training.splits import check_grouped, task_splits
from hilbert_cli.training.synthetic import make_synthetic
from tests.fixtures_train import one_thread, tiny_model, tiny_train  # noqa: F401  (one_thread: fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(240, tasks={"audio": "audio", "text": "text", "interaction": "interaction",
                                      "random": "random"}, n_classes={"audio": 3, "text": 2, "interaction": 2,
                                                                      "random": 2},
                          d_audio=8, d_text=8, min_segments=4, max_segments=8, n_groups=80, strength=2.0, seed=3)


@pytest.mark.parametrize("task,variant,floor", [
    ("audio", "hilbert", 0.75),
    ("text", "hilbert", 0.75),
    ("interaction", "hilbert", 0.65),
])
def test_signal_is_learnt(data, task, variant, floor):
    splits = task_splits(data, task, n_folds=3, seed=0)
    assert check_grouped(splits, data.groups)
    r = run_cv(data, task, tiny_model(variant), tiny_train(), splits)
    assert r.auc > floor, (task, r.auc, r.fold_aucs)
    assert len(r.indices) == 240 and sorted(r.indices) == list(range(240))
    assert r.oof_probs.shape == (240, len(data.class_names[task]))
    assert np.allclose(r.oof_probs.sum(1), 1.0, atol=1e-5)


def test_random_labels_give_chance_auc(data):
    aucs = []
    for seed in (0, 1):
        splits = task_splits(data, "random", n_folds=3, seed=seed)
        aucs.append(run_cv(data, "random", tiny_model("transfer_moe"), tiny_train(seed=seed), splits).auc)
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


def test_cv_is_deterministic_for_a_seed():
    ds = make_synthetic(48, tasks={"a": "audio"}, d_audio=6, d_text=6, min_segments=3, max_segments=5, seed=1)
    splits = task_splits(ds, "a", n_folds=2, seed=0)
    cfg = tiny_train(max_epochs=3, min_epochs=1)
    r1 = run_cv(ds, "a", tiny_model("hilbert"), cfg, splits)
    r2 = run_cv(ds, "a", tiny_model("hilbert"), cfg, splits)
    assert np.array_equal(r1.oof_probs, r2.oof_probs)
    assert r1.fold_aucs == r2.fold_aucs
