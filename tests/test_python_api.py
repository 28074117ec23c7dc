"""The public Python API: `from hilbert_cli import ...`, lazily, and the README's example runs."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hilbert_cli

REPO = Path(__file__).resolve().parents[1]

#: what a notebook user needs to run the pipeline without the CLI (README.md, "Python API")
ENTRY_POINTS = ("discover", "prepare_recordings", "embed_work_dir", "train_recipe", "run_compare",
                "score_recordings", "load_model_dir", "load_recipe", "run_prepare", "run_embed", "run_score")
OPTIONS = ("PrepareOptions", "EmbedOptions", "ScoreOptions", "ModelConfig", "TrainConfig")
RESULTS = ("PrepareResult", "EmbedResult", "ScoreResult")


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that imports the hilbert_cli under test (not another install)."""
    src = str(Path(hilbert_cli.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _readme_python_api_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section has one python example"
    return blocks[0]


def test_every_entry_point_and_option_class_is_exported_from_its_defining_module():
    assert set(ENTRY_POINTS + OPTIONS + RESULTS) <= set(hilbert_cli.__all__)
    for name in ENTRY_POINTS + OPTIONS + RESULTS:
        obj = getattr(hilbert_cli, name)
        home = importlib.import_module(obj.__module__)
        assert getattr(home, name) is obj, name  # the same object, not a copy
    try:  # anything else is still an AttributeError naming it
        hilbert_cli.no_such_function  # noqa: B018
    except AttributeError as exc:
        assert "no_such_function" in str(exc)
    else:
        raise AssertionError("hilbert_cli.no_such_function resolved")


def test_importing_the_package_loads_no_heavy_library(tmp_path):
    code = ("import sys, hilbert_cli; assert 'discover' in dir(hilbert_cli); "
            "print(sorted(m for m in ('torch', 'pyarrow', 'numpy', 'pydantic', 'typer') if m in sys.modules))")
    res = _run(code, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_readme_python_api_example_runs(tmp_path):
    res = _run(_readme_python_api_example(), tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    variants = [ln.split()[1] for ln in lines if re.fullmatch(r"audio_affect \S+ AUC \d\.\d\d", ln)]
    assert variants == ["hilbert", "linear", "segment-linear", "length-only"], res.stdout
    pred = re.fullmatch(r"audio_affect (\d) (\{.*\})", lines[-1])
    assert pred, res.stdout
    label, probs = pred.group(1), ast.literal_eval(pred.group(2))
    assert sorted(probs) == ["0", "1", "2"] and probs[label] == max(probs.values())
    assert abs(sum(probs.values()) - 1.0) < 0.02
    assert list(tmp_path.iterdir()) == []  # the run went to the temp dir, nothing into the cwd
    # the stage calls' typed results: one recording prepared and embedded, nothing failed
    assert "prepare ['one.wav'] [] 0" in lines and "embed ['one.wav'] egemaps__allMiniLM6" in lines


def test_stage_calls_check_options_and_input_before_touching_anything(tmp_path):
    from hilbert_cli import run_embed, run_prepare
    from hilbert_cli.errors import ConfigError, InputError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"")
    for call, error in ((lambda: run_prepare(tmp_path / "in", tmp_path / "w", {"diarization": "bogus"}), ConfigError),
                        (lambda: run_prepare(tmp_path / "in", tmp_path / "w", {"no_such_option": 1}), ConfigError),
                        (lambda: run_prepare(tmp_path / "in", tmp_path / "w", None, jobs=2, low_memory=True),
                         ConfigError),
                        (lambda: run_prepare(tmp_path / "nowhere", tmp_path / "w"), InputError),
                        (lambda: run_embed(tmp_path / "w", {"audio": "spec"}), InputError)):
        with pytest.raises(error) as info:
            call()
        assert "\n" not in str(info.value)
    assert not (tmp_path / "w").exists()  # nothing was written
