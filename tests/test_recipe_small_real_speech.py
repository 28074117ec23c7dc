"""The built-in `small_real_speech` recipe: the EmoDB-measured settings, and a run through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from fixtures_bench import bench_module
from hilbert_cli.recipes import load_recipe
from hilbert_cli.training.config import LossConfig
from hilbert_cli.training.synthetic import make_synthetic, write_synthetic

REPO = Path(__file__).resolve().parents[1]


def test_recipe_holds_the_settings_the_readme_measured():
    """README "Accuracy on real speech" reports bench_emodb's `hilbert-vote-swa`; the recipe that
    offers those settings to users must not drift from them."""
    variant, model_kw, train_kw, *loss_kw = bench_module("bench_emodb").CONFIGS["hilbert-vote-swa"]
    rec = load_recipe("small_real_speech")
    assert rec.final_variant == variant and variant in rec.variants
    assert {k: getattr(rec.model, k) for k in model_kw} == model_kw
    assert {k: getattr(rec.train, k) for k in train_kw} == train_kw
    assert rec.loss == LossConfig(**(loss_kw[0] if loss_kw else {}))
    # bench_emodb leaves every other key at the library default; so does the recipe
    defaults = rec.model.__class__(variant=variant)
    others = set(type(rec.model).model_fields) - set(model_kw) - {"variant"}
    assert {k: getattr(rec.model, k) for k in others} == {k: getattr(defaults, k) for k in others}


def test_small_real_speech_trains_from_files(tmp_path):
    """The recipe runs as a user runs it: their features and labels, folds grouped by speaker,
    no validation split (fixed epochs, weights averaged), the vote in the saved model."""
    ds = make_synthetic(48, d_audio=8, d_text=6, min_segments=3, max_segments=7, tasks={"label": "audio"},
                        n_groups=8)
    feats, labels = write_synthetic(ds, tmp_path / "data", group_column="speaker_id")
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "hilbert_cli.cli", "train", "small_real_speech", "--features", str(feats), "--labels",
         str(labels), "--out", str(out), "--set", "train.n_folds=4", "--set", "train.max_epochs=4",
         "--set", "train.swa_epochs=2", "--set", "train.threads=1", "--set", "train.baselines=[\"linear\"]"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    metrics = pq.read_table(out / "metrics.parquet").to_pylist()
    variants = {m["variant"] for m in metrics}
    assert {"hilbert", "transfer", "linear"} <= variants
    cfg = json.loads((out / "models" / "label" / "config.json").read_text())
    assert cfg["model_config"]["segment_vote"] is True and cfg["model_config"]["d_model"] == 32
    assert cfg["train_config"]["swa_epochs"] == 2
    # no validation split and no early stopping: every fold trained the fixed number of epochs
    hil = [m for m in metrics if m["variant"] == "hilbert"]
    assert len(hil) == 4 and all(m["n_val"] == 0 and m["best_epoch"] == 4 for m in hil), hil
