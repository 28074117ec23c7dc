"""`hilbert train` end to end, checkpoints (load_model_dir / predict), recipes and their errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hilbert_cli.errors import ConfigError
from hilbert_cli.recipes import builtin_recipes, find_recipe, load_recipe
from tests.fixtures_train import one_thread, synthetic_files  # noqa: F401  (one_thread: fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]


def _hilbert(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hilbert_cli.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                                                "PYTHONPATH": str(REPO), "COLUMNS": "200"}, timeout=600)


QUICK = ["--set", "data.synthetic.n_recordings=40", "--set", "train.max_epochs=2", "--set", "train.min_epochs=1",
         "--set", "train.n_folds=3", "--set", "train.threads=1", "--tasks", "audio_affect,random"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "synthetic"
    r = _hilbert("train", "recipes/synthetic.toml", "--out", out, *QUICK)
    assert r.returncode == 0, r.stderr
    return out


def test_train_synthetic_recipe_writes_every_output(run_dir):
    for f in ("metrics.parquet", "predictions.parquet", "report.md", "summary.json", "recipe.toml",
              "roc_audio_affect.png", "folds_audio_affect.png", "roc_random.png", "folds_random.png",
              "models/audio_affect/model.safetensors", "models/audio_affect/config.json",
              "models/random/model.safetensors", "models/random/config.json"):
        assert (run_dir / f).is_file(), f
    m = pq.read_table(run_dir / "metrics.parquet").to_pydict()
    assert {"task", "variant", "fold", "auc", "n_train", "n_test"} <= set(m)
    # the two variants, and the three baselines on the same folds
    assert set(m["variant"]) == {"hilbert", "transfer", "linear", "segment-linear", "length-only"}
    assert set(m["task"]) == {"audio_affect", "random"}
    assert len(m["fold"]) == 2 * 5 * 3
    p = pq.read_table(run_dir / "predictions.parquet").to_pylist()
    assert len(p) == 40 * 2 * 5
    assert all(abs(sum(r["probs"]) - 1) < 1e-4 for r in p)
    per = {(r["task"], r["variant"]): set() for r in p}
    for r in p:
        per[(r["task"], r["variant"])].add(r["recording_id"])
    assert all(len(v) == 40 for v in per.values())  # every recording predicted out of fold once
    report = (run_dir / "report.md").read_text()
    assert "| audio_affect | 3 | 40 |" in report and "roc_audio_affect.png" in report
    import re

    from hilbert_cli.training.segment_linear import GRID

    line = next(ln for ln in report.splitlines() if ln.startswith("`segment-linear` C chosen") and "audio_affect" in ln)
    chosen = re.findall(r"([\d.e-]+) \((\d\.\d{3})\)", line.split("per fold:")[1])
    assert len(chosen) == 3  # one C per fold, each with the inner AUC it won with
    assert {float(c) for c, _ in chosen} <= set(GRID) and all(0.0 <= float(a) <= 1.0 for _, a in chosen)
    assert list(run_dir.glob("**/*.pkl")) == [] and list(run_dir.glob("**/*.pt")) == []
    cfg = json.loads((run_dir / "models/audio_affect/config.json").read_text())
    assert cfg["class_names"] == ["0", "1", "2"] and cfg["variant"] == "hilbert"
    assert cfg["backbones"]["audio_dim"] == 32 and cfg["backbones"]["text_dim"] == 24
    assert cfg["recipe"]["name"] == "synthetic" and cfg["tool_version"]


def test_second_run_needs_overwrite(run_dir):
    r = _hilbert("train", "recipes/synthetic.toml", "--out", run_dir, *QUICK)
    assert r.returncode == 2 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_load_model_dir_and_predict(run_dir):
    from hilbert_cli.training import TaskPrediction, load_model_dir

    b = load_model_dir(run_dir)
    assert b.tasks == ["audio_affect", "random"]
    assert b.model_id.startswith("synthetic@") and b.tool_version
    assert b.features_metadata.get("synthetic") is True
    rng = np.random.default_rng(0)
    preds = b.predict(rng.standard_normal((9, 32)), rng.standard_normal((9, 24)))
    assert [p.task for p in preds] == ["audio_affect", "random"]
    p = preds[0]
    assert isinstance(p, TaskPrediction) and p.probs.shape == (3,) and abs(p.probs.sum() - 1) < 1e-5
    assert p.label in p.class_names
    assert set(p.embeddings) == {"z_a", "z_t", "z_j", "h_a", "h_t", "h_j"} and p.embeddings["z_j"].shape == (64,)
    # deterministic, and a single task directory loads too
    again = load_model_dir(run_dir / "models" / "audio_affect").predict(
        np.random.default_rng(0).standard_normal((9, 32)), np.random.default_rng(0).standard_normal((9, 24))[:9])
    assert again[0].task == "audio_affect"
    assert b.predict(np.zeros((0, 32)), np.zeros((0, 24)))[0].probs.shape == (3,)  # no segment at all
    with pytest.raises(ValueError, match="d_audio=32"):
        b.predict(np.zeros((3, 31)), np.zeros((3, 24)))


def _rehash(model_dir: Path) -> None:
    """Record the current model.safetensors' sha256 in config.json."""
    import hashlib

    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    (model_dir / "config.json").write_text(json.dumps(cfg))


def test_model_saved_with_pool_score_biases_still_loads(run_dir, tmp_path):
    """Models saved before the attention pools lost their (softmax-invariant) score bias load,
    and predict exactly what they predicted: the bias added one constant to every position."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from hilbert_cli.training import load_model_dir

    old = tmp_path / "old"
    shutil.copytree(run_dir / "models" / "audio_affect", old)
    sd = load_file(str(old / "model.safetensors"))
    for m in "atj":
        sd[f"model.pool_{m}.score.2.bias"] = torch.tensor([3.7])
    save_file(sd, str(old / "model.safetensors"))
    _rehash(old)  # a real legacy model's weights_sha256 matches its file
    rng = np.random.default_rng(1)
    a, t = rng.standard_normal((9, 32)), rng.standard_normal((9, 24))
    p_old = load_model_dir(old).predict(a, t)[0]
    p_new = load_model_dir(run_dir / "models" / "audio_affect").predict(a, t)[0]
    np.testing.assert_allclose(p_old.probs, p_new.probs, atol=1e-6)
    sd["model.pool_a.score.2.weight_extra"] = torch.zeros(1)  # any other unknown key still fails
    save_file(sd, str(old / "model.safetensors"))
    _rehash(old)  # so the load fails on the unknown key, not on the hash
    with pytest.raises(ConfigError, match="weights do not match"):
        load_model_dir(old)


def test_model_dir_missing_corrupt_incompatible(run_dir, tmp_path):
    import shutil

    from hilbert_cli.training import load_model_dir

    with pytest.raises(ConfigError, match="not found"):
        load_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no trained model"):
        load_model_dir(tmp_path / "empty")
    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "models" / "random", bad)
    (bad / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="corrupt weights"):
        load_model_dir(bad)
    shutil.copy(run_dir / "models" / "random" / "model.safetensors", bad / "model.safetensors")
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ConfigError, match="format version 99"):
        load_model_dir(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt model config"):
        load_model_dir(bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "class_names": ["a", "b", "c", "d"]}))
    with pytest.raises(ConfigError, match="do not match"):
        load_model_dir(bad)


def test_train_from_parquet_features_and_labels(tmp_path):
    feats, labels = synthetic_files(tmp_path / "data", n=36)
    rec = tmp_path / "r.toml"
    rec.write_text(f"""
name = "files"
output_dir = "{tmp_path / 'runs'}"
variants = ["transfer_moe"]
[data]
features = "{feats}"
labels = "{labels}"
group_column = "group"
[[tasks]]
name = "a"
n_classes = 2
[model]
d_model = 16
n_heads = 2
input_pca = 4
[train]
n_folds = 3
max_epochs = 2
min_epochs = 1
threads = 1
""")
    r = _hilbert("train", rec)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "runs" / "files"
    assert (out / "models" / "a" / "model.safetensors").is_file()
    preds = pq.read_table(out / "predictions.parquet").to_pydict()
    assert "group" in preds
    from hilbert_cli.training import load_model_dir

    b = load_model_dir(out)
    assert b.predict(np.ones((4, 8)), np.ones((4, 6)))[0].probs.shape == (2,)


def test_recipe_errors_are_one_line_naming_key_or_file(tmp_path):
    base = (REPO / "recipes" / "synthetic.toml").read_text()
    cases = {
        "unknown": (base.replace("[train]\n", "[train]\nn_fold = 3\n"), "train.n_fold: unknown key"),
        "type": (base.replace("n_folds = 5", 'n_folds = "five"'), "train.n_folds"),
        "variant": (base.replace('variants = ["hilbert", "transfer"]', 'variants = ["hilbrt"]'), "variants[0]"),
        "task": (base.replace('signal = "text"', 'signal = "video"'), "tasks[1].signal"),
        "toml": (base + "\n[[[", "invalid TOML"),
    }
    for name, (text, expect) in cases.items():
        p = tmp_path / f"{name}.toml"
        p.write_text(text)
        with pytest.raises(ConfigError) as ei:
            load_recipe(p)
        assert expect in str(ei.value) and str(p) in str(ei.value) and "\n" not in str(ei.value), str(ei.value)
    missing = tmp_path / "missing.toml"
    missing.write_text('name = "m"\n[data]\nfeatures = "/no/such/features"\nlabels = "/no/labels.csv"\n'
                       '[[tasks]]\nname = "a"\n')
    with pytest.raises(ConfigError, match=r"data\.features: not found: /no/such/features"):
        load_recipe(missing, check_files=True)
    assert load_recipe(missing).name == "m"  # schema alone is fine
    r = _hilbert("recipes", "validate", missing, "recipes/synthetic.toml")
    assert r.returncode == 2 and "data.features" in r.stderr and "ok recipes/synthetic.toml" in r.stdout
    r = _hilbert("train", tmp_path / "unknown.toml")
    assert r.returncode == 2 and "unknown key" in r.stderr and "Traceback" not in r.stderr


def test_builtin_recipes_by_name_and_list():
    names = builtin_recipes()
    assert {"synthetic", "forbow_parent", "forbow_offspring"} <= set(names)
    assert find_recipe("synthetic") == names["synthetic"]
    for n in ("forbow_parent", "forbow_offspring"):
        rec = load_recipe(n)
        assert rec.train.n_folds == 25 and rec.model.latent_dim == 128 and rec.data.group_column
    parent, off = load_recipe("forbow_parent"), load_recipe("forbow_offspring")
    counts = {t.name: t.n_classes for t in parent.tasks}
    assert counts == {"affect": 3, "warmth": 3, "overprotection": 3, "cohesion": 5, "criticism": 4, "worry": 4,
                      "spectrum": 4, "introvert": 2, "extrovert": 2, "adhd": 2, "anxiety": 2, "depression": 2}
    assert {t.name: t.n_classes for t in off.tasks} == {"affect": 4, "coherence": 5, "richness": 3, "spectrum": 4,
                                                         "introvert": 2, "extrovert": 2, "adhd": 2, "anxiety": 2,
                                                         "depression": 2}
    assert (parent.data.audio_model, parent.data.text_model) == ("hubLgFT", "paraTinyBERT")
    assert (off.data.audio_model, off.data.text_model) == ("whisperM", "paraTinyBERT")
    with pytest.raises(ConfigError, match="recipe not found"):
        find_recipe("no_such_recipe")
    r = _hilbert("recipes", "list")
    assert r.returncode == 0 and "forbow_parent" in r.stderr + r.stdout
    r = _hilbert("recipes", "show", "synthetic")
    assert r.returncode == 0 and 'name = "synthetic"' in r.stdout


def test_recipe_final_model_false_is_honoured_and_the_flag_overrides_it(tmp_path):
    out = tmp_path / "nofinal"
    r = _hilbert("train", "recipes/synthetic.toml", "--out", out, *QUICK, "--set", "train.final_model=false")
    assert r.returncode == 0, r.stderr
    assert (out / "metrics.parquet").is_file() and not (out / "models").exists()
    r = _hilbert("train", "recipes/synthetic.toml", "--out", out, *QUICK, "--set", "train.final_model=false",
                 "--final", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (out / "models" / "audio_affect" / "config.json").is_file()
