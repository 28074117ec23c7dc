"""`hilbert compare` end to end on features files: a CLAP-style baseline on its own features,
paired tests (a variant against an identical copy of itself is never significant), outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.fixtures_compare import tiny_dataset


@pytest.fixture(scope="module")
def feature_files(tmp_path_factory):
    from hilbert_cli.training.data import FeatureDataset
    from hilbert_cli.training.synthetic import write_synthetic

    root = tmp_path_factory.mktemp("cmpfeat")
    ds = tiny_dataset(n=45, seed=3, tasks={"aud": "audio"})
    feats, labels = write_synthetic(ds, root / "main")
    # the "CLAP" features: the same recordings, other (smaller) embeddings; one recording missing
    rng = np.random.default_rng(0)
    pa_, pt_ = rng.standard_normal((ds.d_audio, 4)), rng.standard_normal((ds.d_text, 4))
    keep = list(range(1, ds.n))
    L = ds.lengths
    clap = FeatureDataset.from_arrays(
        [ds.recording_ids[i] for i in keep],
        [ds.audio[i, : L[i]].numpy() @ pa_ for i in keep], [ds.text[i, : L[i]].numpy() @ pt_ for i in keep],
        {"aud": [int(ds.labels["aud"][i]) for i in keep]}, class_names={"aud": ds.class_names["aud"]},
        features_metadata={"audio_model": {"alias": "clapLaion", "dim": 4}, "text_model": {"alias": "clapLaion", "dim": 4}})
    clap_feats, _ = write_synthetic(clap, root / "clap")
    return feats, labels, clap_feats


RECIPE = """
name = "cli"
output_dir = "{out}"
variants = ["transfer"]

[data]
features = "{feats}"
labels = "{labels}"

[[tasks]]
name = "aud"
n_classes = 2

[model]
d_model = 8
latent_dim = 64
n_heads = 1
n_experts = 2
expert_hidden = 4
head_hidden = 4

[train]
n_folds = 3
max_epochs = 2
patience = 0
val_fraction = 0.0
threads = 1

[[compare.variants]]
name = "transfer"
variant = "transfer"

[[compare.variants]]
name = "transfer (again)"
variant = "transfer"

[[compare.variants]]
name = "CLAP-LAION"
variant = "transfer"
features = "{clap}"

[[compare.variants]]
name = "hilbert"
variant = "hilbert"

[compare.stats]
n_boot = 200
"""


def test_compare_cli_writes_report_with_clap_row_and_paired_tests(tmp_path, feature_files):
    from hilbert_cli.cli import app

    feats, labels, clap = feature_files
    recipe = tmp_path / "cli.toml"
    recipe.write_text(RECIPE.format(out=tmp_path / "runs", feats=feats, labels=labels, clap=clap))
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["compare", str(recipe), "--only", "variants", "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    for f in ("report.md", "compare.json", "runs.parquet", "oof.parquet", "variants.png", "modality_aud.png"):
        assert (out / f).is_file(), f
    data = json.loads((out / "compare.json").read_text())
    task = data["tasks"]["aud"]
    assert task["n"] == 44 and task["dropped"] == 1  # the recording the CLAP features lack is left out everywhere
    rows = {r["name"]: r for r in task["variants"]}
    # the variants, then the baselines on the same folds
    assert list(rows) == ["transfer", "transfer (again)", "CLAP-LAION", "hilbert", "linear", "segment-linear",
                          "length-only"]
    assert rows["CLAP-LAION"]["audio"] == "clapLaion" and rows["CLAP-LAION"]["d_audio"] == 4
    assert rows["transfer"]["auc"] == rows["transfer (again)"]["auc"]
    assert data["distinct_runs"] == 6  # the identical copy is not trained twice
    tests = {(t["a"], t["b"]): t for t in task["tests"]}
    assert len(tests) == 21  # every pair of the 7 rows
    self_test = tests[("transfer", "transfer (again)")]
    assert self_test["p"] == 1.0 and self_test["diff"] == 0.0 and self_test["significant"] is False
    assert all(t["p_adj"] >= t["p"] for t in task["tests"])
    md = (out / "report.md").read_text()
    assert "## Table 2 - variants" in md and "| CLAP-LAION | transfer | clapLaion / clapLaion |" in md
    assert "Holm" in md
    import pyarrow.parquet as pq

    oof = pq.read_table(out / "oof.parquet").to_pydict()
    by_run: dict = {}
    for run, rid in zip(oof["run"], oof["recording_id"]):
        by_run.setdefault(run, []).append(rid)
    assert len(by_run) == 6 and all(v == next(iter(by_run.values())) for v in by_run.values())  # the distinct runs
    # an existing report is not overwritten by accident
    res2 = CliRunner().invoke(app, ["compare", str(recipe), "--only", "variants", "--out", str(out)])
    assert res2.exit_code != 0 and "already holds" in str(res2.exception)


def test_compare_cli_rejects_bad_compare_keys(tmp_path, feature_files):
    from hilbert_cli.cli import app
    from hilbert_cli.errors import ConfigError

    feats, labels, clap = feature_files
    recipe = tmp_path / "bad.toml"
    recipe.write_text(RECIPE.format(out=tmp_path / "runs", feats=feats, labels=labels, clap=clap)
                      + "\n[compare.sweep]\nvaluez = [1]\n")
    res = CliRunner().invoke(app, ["compare", str(recipe)])
    assert isinstance(res.exception, ConfigError)
    assert "compare.sweep.valuez: unknown key" in str(res.exception) and "\n" not in str(res.exception)
    res = CliRunner().invoke(app, ["compare", str(recipe), "--only", "tables"])
    assert isinstance(res.exception, ConfigError) and "--only" in str(res.exception)
