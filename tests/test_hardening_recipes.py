"""Recipe hardening (issue 12): names are safe path components, and too few recordings for the
folds is one line naming the task, the counts and the fix (exit 2), for train and compare."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hilbert_cli.errors import ConfigError
from hilbert_cli.evaluation.config import parse_compare
from hilbert_cli.recipes import load_recipe
from hilbert_cli.training.splits import inner_split, make_splits

REPO = Path(__file__).resolve().parents[1]
UNSAFE = ["..", ".", ".hidden", "../escape", "a/b", "a\u0000b", "x" * 101]


def _recipe(path: Path, *, name: str = "tiny", task: str = "a", compare: str = "tiny_cmp", out: Path | None = None,
            n: int = 8, folds: int = 3) -> Path:
    """A synthetic recipe small enough to train in seconds; strings written as TOML basic strings."""
    q = json.dumps  # JSON string escapes (\" \\ \u0000) are TOML basic-string escapes too
    path.write_text(f"""
name = {q(name)}
output_dir = {q(str(out or path.parent / "runs"))}
variants = ["transfer"]
[data.synthetic]
n_recordings = {n}
min_segments = 2
max_segments = 4
d_audio = 4
d_text = 4
[[tasks]]
name = {q(task)}
signal = "audio"
n_classes = 2
[model]
d_model = 8
n_heads = 2
latent_dim = 64
[train]
n_folds = {folds}
max_epochs = 1
min_epochs = 1
threads = 1
diagnostics = false
final_model = false
[compare]
name = {q(compare)}
""")
    return path


def _hilbert(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hilbert_cli.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO),
                                        "COLUMNS": "300"}, timeout=300)


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return lines[-1]


def test_unsafe_names_are_one_line_config_errors_naming_file_and_key(tmp_path):
    for bad in UNSAFE:
        for key, kw in (("name", {"name": bad}), ("tasks[0].name", {"task": bad})):
            p = _recipe(tmp_path / "r.toml", **kw)
            with pytest.raises(ConfigError) as ei:
                load_recipe(p)
            msg = str(ei.value)
            assert msg.startswith(f"{p}: {key}: ") and "safe file name" in msg and "\n" not in msg, (bad, msg)
        p = _recipe(tmp_path / "r.toml", compare=bad)
        with pytest.raises(ConfigError) as ei:
            parse_compare(load_recipe(p).compare, str(p))
        msg = str(ei.value)
        assert msg.startswith(f"{p}: compare.name: ") and "safe file name" in msg and "\n" not in msg, (bad, msg)
    good = load_recipe(_recipe(tmp_path / "ok.toml", name="run.v2-final_1", task="t.1-b_c", compare="cmp.v2"))
    assert good.name == "run.v2-final_1" and good.tasks[0].name == "t.1-b_c"
    assert parse_compare(good.compare, "ok.toml").name == "cmp.v2"


def test_train_with_dotdot_name_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    p = _recipe(tmp_path / "r.toml", name="..", out=out, n=16, folds=0)
    r = _hilbert("train", p, cwd=tmp_path)
    line = _one_line_error(r)
    assert str(p) in line and "name:" in line and "safe file name" in line, line
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.toml"]  # no run dir, nothing beside the recipe


def test_make_splits_names_the_counts_and_a_fold_count_that_works():
    y = np.array([0] * 5 + [1] * 3)
    groups = np.array(list("abcdefgh"))  # 8 groups: the folds are capped at 8, still more than the largest class
    for g, counts in ((None, "from 8 labelled recording(s) (smallest class 3, largest 5)"),
                      (groups, "from 8 labelled recording(s) in 8 group(s) (smallest class 3, largest 5)")):
        with pytest.raises(ConfigError) as ei:
            make_splits(y, g, 25, task="mood")
        msg = str(ei.value)
        assert msg.startswith(f"task 'mood': cannot make 25 cross-validation folds {counts}: use --folds "), msg
        n = int(re.search(r"--folds (\d+) or fewer", msg).group(1))
        assert len(make_splits(y, g, n)) == n  # the suggested count works ...
        with pytest.raises(ConfigError):
            make_splits(y, g, n + 1)  # ... and is the largest that does


def test_inner_split_of_a_small_fold_falls_back_to_no_validation_set():
    """A training fold too small to stratify 1/val_fraction ways (final model on 8 recordings)
    trains without early stopping instead of raising sklearn's ValueError."""
    y = np.array([0] * 4 + [1] * 4)
    fit, val = inner_split(np.arange(8), y, None, 0.15, seed=0)
    assert fit.tolist() == list(range(8)) and val.size == 0


@pytest.mark.parametrize("command", ["train", "compare"])
def test_fewer_recordings_than_folds_is_one_line_exit_2(tmp_path, command):
    p = _recipe(tmp_path / "r.toml", n=8, folds=25)
    extra = ["--only", "variants"] if command == "compare" else []
    r = _hilbert(command, p, *extra, cwd=tmp_path)
    line = _one_line_error(r)
    assert re.search(r"task 'a': cannot make 25 cross-validation folds from 8 labelled recording\(s\) "
                     r"\(smallest class \d+, largest \d+\): use --folds \d+ or fewer", line), line
    assert not (tmp_path / "runs").exists()
