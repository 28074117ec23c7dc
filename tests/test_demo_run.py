"""The demo's training step runs recipes/demo.toml (the built-in recipe) on demo features,
and its summary table and held-out metrics come out of a real run."""

from __future__ import annotations

import math

from hilbert_cli.demo.run import heldout_metrics, recipe_path, train_demo
from hilbert_cli.recipes import load_recipe
from tests.fixtures_score import score_setup  # noqa: F401


def test_demo_recipe_is_valid_and_built_in():
    r = load_recipe(recipe_path())
    assert r.name == "demo" and set(r.variants) >= {"hilbert", "transfer"} and r.data.group_column == "participant"
    assert [t.name for t in r.tasks] == ["affect"] and r.tasks[0].classes == ["negative", "neutral", "positive"]
    assert load_recipe("demo").name == "demo"  # found by name, as `hilbert train demo`


def test_train_demo_on_demo_features_then_score_metrics(score_setup, tmp_path):
    from hilbert_cli.embed.pipeline import features_dir
    from hilbert_cli.parquet_io import read_metadata
    from hilbert_cli.embed.options import EmbedOptions

    # the score fixture's training features (6 recordings, 2 participants): 2 grouped folds
    meta = next((score_setup.work_train / "features").rglob("*.parquet"))
    emb = EmbedOptions.model_validate(read_metadata(meta)["embed_options"])
    feats = features_dir(score_setup.work_train, emb)
    run_dir = tmp_path / "demo"
    rows = train_demo(feats, score_setup.corpus.labels, run_dir, folds=2, device="cpu", show_progress=False,
                      max_epochs=3)
    variants = {r["variant"]: r for r in rows}
    assert set(variants) == {"hilbert", "transfer", "linear", "length-only"}  # the variants and the baselines
    for r in rows:
        assert r["n_folds"] == 2 and r["n"] == 6 and (math.isnan(r["auc_pooled"]) or 0 <= r["auc_pooled"] <= 1)
    assert (run_dir / "models" / "affect" / "config.json").is_file() and (run_dir / "report.md").is_file()
    # a second call reuses the finished run
    mtime = (run_dir / "summary.json").stat().st_mtime_ns
    again = train_demo(feats, score_setup.corpus.labels, run_dir, folds=2, device="cpu", show_progress=False,
                       max_epochs=3)
    assert [(r["variant"], r["n_folds"]) for r in again] == [(r["variant"], r["n_folds"]) for r in rows]
    assert (run_dir / "summary.json").stat().st_mtime_ns == mtime
