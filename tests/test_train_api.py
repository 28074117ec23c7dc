"""The Python API of the experiment layer: train(recipe) -> TrainResult, compare(recipe) ->
CompareResult, load_model(dir).predict(features) -> Predictions, and one set of folds per task."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_train import synthetic_files

RECIPE = """
name = "api"
output_dir = "{out}"
variants = ["transfer"]

[data]
features = "{features}"
labels = "{labels}"
group_column = "group"

[[tasks]]
name = "a"

[[tasks]]
name = "t"

[model]
d_model = 8
latent_dim = 64
n_heads = 1
n_experts = 2
expert_hidden = 4
head_hidden = 4
dropout = 0.0

[train]
n_folds = 3
max_epochs = 12
patience = 0
lr = 0.01
threads = 1
device = "cpu"

[compare.ablation]
enabled = false

[compare.sweep]
enabled = false

[compare.stats]
n_boot = 200
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import hilbert_cli
    from hilbert_cli.recipes import load_recipe

    tmp = tmp_path_factory.mktemp("api")
    features, labels = synthetic_files(tmp, n=48, strength=3.0)
    path = tmp / "api.toml"
    path.write_text(RECIPE.format(out=tmp / "runs", features=features, labels=labels))
    recipe = load_recipe(path)
    return hilbert_cli.train(recipe, progress=False), recipe, features, labels


def test_train_returns_a_typed_result_with_baselines_on_the_same_folds(trained):
    import hilbert_cli

    run, recipe, *_ = trained
    assert isinstance(run, hilbert_cli.TrainResult) and run.report.is_file()
    assert {(r.task, r.variant) for r in run.results} == {(t, v) for t in ("a", "t")
                                                          for v in ("transfer", "linear", "segment-linear", "length-only")}
    for t in ("a", "t"):  # the model and both baselines tested every recording in the same fold
        folds = [r for r in run.results if r.task == t]
        for r in folds[1:]:
            assert np.array_equal(r.indices, folds[0].indices) and np.array_equal(r.fold_of, folds[0].fold_of)
    assert set(run.final_models) == {"a", "t"}


def test_compare_returns_a_typed_result_whose_folds_are_train_folds(trained, tmp_path):
    import hilbert_cli

    run, recipe, *_ = trained
    res = hilbert_cli.compare(recipe, out_dir=tmp_path / "cmp", progress=False)
    assert isinstance(res, hilbert_cli.CompareResult) and res.report.is_file()
    cv = {(r.task, r.variant): r for r in run.results}
    for t in ("a", "t"):
        frame = res.experiment.frame(t)
        tr = cv[(t, "transfer")]
        # the same recordings in the same test folds as `hilbert train`, and the same AUC per fold
        assert np.array_equal(res.experiment.positions("recipe", frame.rec_ids), tr.indices)
        assert np.array_equal(frame.fold_of, tr.fold_of)
        rows = {r["name"]: r for r in res.results["tasks"][t]["variants"]}
        assert set(rows) == {"transfer", "linear", "segment-linear", "length-only"}
        assert rows["transfer"]["auc_fold_mean"] == pytest.approx(tr.auc_mean, abs=1e-12)
        for b in ("linear", "segment-linear"):  # the same baselines, the same figures
            assert rows[b]["auc"] == pytest.approx(cv[(t, b)].auc, abs=1e-12)


def test_load_model_predicts_every_recording_like_the_bundle(trained):
    import hilbert_cli
    from hilbert_cli.errors import InputError
    from hilbert_cli.training.checkpoint import load_model_dir
    from hilbert_cli.training.predictor import Predictions
    from hilbert_cli.training.data import load_features
    from hilbert_cli.training.metrics import macro_auc

    run, _recipe, features, labels = trained
    model = hilbert_cli.load_model(run.run_dir)
    preds = model.predict(features)
    assert isinstance(preds, Predictions)
    ids = sorted({r for r in load_features(features)[0]})
    assert len(preds) == 2 * len(ids) and {p.recording_id for p in preds} == set(ids)
    bundle = load_model_dir(run.run_dir)
    fids, audio, text, _seg, _meta = load_features(features, [ids[5]])
    ref = {p.task: p.probs for p in bundle.predict(audio, text)}
    for p in preds:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5
        assert p.label == max(p.probabilities, key=p.probabilities.get)
        if p.recording_id == ids[5]:
            assert np.allclose(list(p.probabilities.values()), ref[p.task], atol=1e-6)
    # the final model learnt the audio task: its in-sample AUC is far above chance
    import csv

    truth = {r["recording_id"]: r["a"] for r in csv.DictReader(open(labels))}
    rows = preds.for_task("a")
    classes = list(rows[0].probabilities)
    y = np.array([classes.index(truth[p.recording_id]) for p in rows])
    assert macro_auc(y, np.array([list(p.probabilities.values()) for p in rows])) > 0.8
    with pytest.raises(InputError, match="no model for task"):
        model.predict(features, tasks=["nope"])


def test_the_recipe_chooses_the_baselines_but_never_drops_linear(tmp_path):
    import hilbert_cli
    from hilbert_cli.errors import ConfigError
    from hilbert_cli.recipes import load_recipe

    features, labels = synthetic_files(tmp_path, n=30, strength=3.0)
    text = RECIPE.format(out=tmp_path / "runs", features=features, labels=labels)
    path = tmp_path / "only_linear.toml"
    path.write_text(text.replace("[train]\n", '[train]\nbaselines = ["linear"]\nfinal_model = false\n'))
    run = hilbert_cli.train(load_recipe(path), progress=False)
    assert {r.variant for r in run.results} == {"transfer", "linear"}
    path.write_text(text.replace("[train]\n", '[train]\nbaselines = ["segment-linear"]\n'))
    with pytest.raises((ConfigError, ValueError), match="linear"):
        load_recipe(path)
