"""Epoch count by inner CV (TrainConfig.epoch_choice = "inner_cv"): chosen on training folds only,
from the validation curve averaged over inner folds, then one model per fold on its whole training fold."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_train import tiny_model, tiny_train, torch_threads


@pytest.fixture(scope="module")
def data():
    from hilbert_cli.training.synthetic import make_synthetic

    return make_synthetic(96, tasks=[("y", "audio", 2)], d_audio=8, d_text=8, min_segments=3, max_segments=6,
                          n_groups=24, strength=2.0, seed=5)


def test_best_mean_epoch_averages_curves_and_carries_a_stopped_fold():
    from hilbert_cli.training.cv import best_mean_epoch

    a = [{"val_auc": v, "val_ce": 1.0} for v in (0.5, 0.9, 0.6, 0.6)]  # alone: epoch 2
    b = [{"val_auc": v, "val_ce": 1.0} for v in (0.5, 0.5, 0.8)]  # stopped at 3; 0.8 carried to epoch 4
    c = [{"val_auc": v, "val_ce": 1.0} for v in (0.5, 0.4, 0.9, 0.95)]
    assert best_mean_epoch([a]) == 2
    assert best_mean_epoch([a, b, c]) == 4  # means 0.5, 0.6, 0.767, 0.783
    # an undefined AUC (one-class validation part) falls back to the lowest mean CE
    d = [{"val_auc": float("nan"), "val_ce": v} for v in (0.9, 0.4, 0.7)]
    assert best_mean_epoch([d]) == 2
    assert best_mean_epoch([a], criterion="loss") == 1  # equal CE: the earliest epoch


def test_inner_folds_partition_the_training_fold_by_group(data):
    from hilbert_cli.training.splits import inner_folds, task_splits

    tr, te = task_splits(data, "y", n_folds=4, seed=0)[0]
    folds = inner_folds(tr, data.labels["y"], data.groups, 3, seed=1)
    assert len(folds) == 3
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == sorted(tr.tolist())  # every training recording validates once
    for fit, val in folds:
        assert not set(fit) & set(te) and not set(val) & set(te)
        assert not set(data.groups[fit]) & set(data.groups[val])


def test_run_cv_inner_cv_trains_each_fold_for_the_chosen_epochs(data):
    from hilbert_cli.training.cv import choose_epochs, run_cv
    from hilbert_cli.training.splits import task_splits

    splits = task_splits(data, "y", n_folds=3, seed=0)
    tc = tiny_train(max_epochs=10, min_epochs=2, patience=2, epoch_choice="inner_cv", inner_folds=3)
    seen: dict[int, list[int]] = {}
    with torch_threads(1):
        r = run_cv(data, "y", tiny_model("transfer"), tc, splits,
                   epoch_callback=lambda k, rec: seen.setdefault(k, []).append(rec["epoch"]))
        chosen = choose_epochs(data, "y", [tr for tr, _ in splits], tiny_model("transfer"), tc, seed=tc.seed)
    assert r.n_val == [0, 0, 0]  # the whole training fold trains the model
    assert sorted(seen) == [0, 1, 2]  # progress is reported for the outer folds only
    for k, d in enumerate(r.diagnostics):
        assert d["epoch_choice"] == "inner_cv"
        assert len(d["inner_best_epochs"]) == 3
        assert d["best_epoch"] == d["epochs_run"] == chosen[k][0]  # deterministic: the same choice again
        assert 1 <= d["best_epoch"] <= 10
        assert seen[k] == list(range(1, d["epochs_run"] + 1))
    assert r.auc > 0.75, r.fold_aucs


def test_train_report_says_how_epochs_were_chosen(tmp_path):
    from hilbert_cli.recipes import load_recipe
    from hilbert_cli.evaluation.train import train_recipe

    recipe_path = tmp_path / "r.toml"
    recipe_path.write_text("""
name = "small"
output_dir = "runs"
variants = ["transfer"]
[data.synthetic]
n_recordings = 48
d_audio = 6
d_text = 6
min_segments = 2
max_segments = 4
n_groups = 12
[[tasks]]
name = "y"
signal = "audio"
[model]
d_model = 16
n_heads = 2
[train]
n_folds = 3
max_epochs = 3
min_epochs = 1
epoch_choice = "inner_cv"
inner_folds = 2
diagnostics = false
final_model = false
device = "cpu"
""")
    with torch_threads(1):
        run = train_recipe(load_recipe(recipe_path), out_dir=tmp_path / "run", progress=False)
    report = (run.run_dir / "report.md").read_text()
    assert "chosen by an inner 2-fold CV on each training fold" in report
