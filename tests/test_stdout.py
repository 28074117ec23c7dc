"""Results on stdout, logs on stderr: `hilbert models list | grep hub` and `> file` get the table.

Each command runs in a subprocess (as a shell pipe would see it): its table, list or one-line
summary must be in stdout and not in stderr; errors and warnings stay on stderr, with their
text intact (rich markup must not eat `[ray]` or `[offline]`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

HILBERT = str(Path(sys.executable).parent / "hilbert")
REPO = Path(__file__).resolve().parents[1]
NARROW = {"COLUMNS": "80"}  # what a pipe gets: rich's default width


def _hilbert(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([HILBERT, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_models_list_is_a_table_on_stdout_with_whole_aliases():
    from hilbert_cli.registry import registry

    proc = _hilbert("models", "list", env=NARROW)
    assert proc.returncode == 0, proc.stderr
    assert "models dir" in proc.stdout and "models dir" not in proc.stderr
    cells = {c.strip() for line in proc.stdout.splitlines() for c in line.split("│")}
    # every alias whole in one cell at 80 columns: the name a user must copy is never cut
    assert set(registry()) <= cells, set(registry()) - cells
    assert "…" not in proc.stdout
    hub = [ln for ln in proc.stdout.splitlines() if "hub" in ln]  # `hilbert models list | grep hub`
    assert hub


def test_recipes_list_and_show_go_to_stdout():
    proc = _hilbert("recipes", "list", env=NARROW)
    assert proc.returncode == 0, proc.stderr
    assert "built-in recipes" in proc.stdout and "demo" in proc.stdout
    assert "built-in recipes" not in proc.stderr
    proc = _hilbert("recipes", "show", "demo")
    assert proc.returncode == 0 and "[[tasks]]" in proc.stdout and proc.stderr == ""
    proc = _hilbert("recipes", "validate", "demo", "--schema-only")
    assert proc.returncode == 0 and proc.stdout.startswith("ok demo: demo") and proc.stderr == ""


def test_doctor_table_and_verdict_on_stdout():
    # (a broken install: its one error line stays on stderr, test_foundation_cli.py)
    proc = _hilbert("doctor", "--no-models")
    assert proc.returncode == 0, proc.stderr
    for name in ("torch", "faster-whisper", "pyannote.audio", "device", "PyAV FFmpeg", "installation ok"):
        assert name in proc.stdout and name not in proc.stderr, name


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """`hilbert prepare -q` then `hilbert embed -q` on one short espeak-ng recording with a sidecar
    transcript (no diarization, no ASR run): (prepare proc, embed proc, work dir)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng/sox not installed")
    from tests.fixtures_prepare import synth_speech

    root = tmp_path_factory.mktemp("stdout")
    text = "hello there how are you today i am fine thank you"
    synth_speech(text, root / "in" / "a.wav")
    (root / "in" / "a.txt").write_text(text + "\n")
    work = root / "w"
    prep = _hilbert("prepare", root / "in", "--out", work, "-q", "--diarization", "none", "--device", "cpu")
    emb = _hilbert("embed", work, "-q", "--audio", "spec", "--text", "allMiniLM6", "--emotion", "off",
                   "--device", "cpu")
    return prep, emb, work


def test_prepare_quiet_prints_its_one_line_summary_on_stdout(prepared):
    prep, _, work = prepared
    assert prep.returncode == 0, prep.stderr
    lines = prep.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("prepare: 1 done") and "manifest" in lines[0], prep.stdout
    assert str(work / "manifest" / "prepare") in lines[0]  # one line, whatever the width: greppable
    assert "prepare:" not in prep.stderr


def test_embed_quiet_prints_its_summary_and_paths_on_stdout(prepared):
    _, emb, work = prepared
    assert emb.returncode == 0, emb.stderr
    lines = emb.stdout.splitlines()
    assert lines[0].startswith("embed: 1 done"), emb.stdout
    assert [ln.split(":")[0] for ln in lines[1:]] == ["features", "segments"]
    assert Path(lines[1].split(": ", 1)[1]).is_dir() and str(work) in lines[2]
    assert "embed:" not in emb.stderr and "features:" not in emb.stderr


def test_merge_prints_merged_rows_on_stdout(tmp_path):
    from tests.test_score_merge import _write

    ids = [f"r{i}.wav" for i in range(4)]
    for k in range(2):
        _write(tmp_path / "scores" / f"part-{k}-of-2.parquet", ids[k::2], (k, 2))
    out = tmp_path / "merged.parquet"
    proc = _hilbert("merge", tmp_path / "scores", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"merged 8 rows -> {out}" and "merged" not in proc.stderr


def test_errors_and_warnings_keep_their_brackets(tmp_path, capsys):
    from hilbert_cli.console import error, warn

    proc = _hilbert("train", tmp_path / "needs[ray]and[offline].toml")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{tmp_path}/needs[ray]and[offline].toml: recipe not found" in proc.stderr, proc.stderr
    error("needs pip install 'hilbert-cli[ray]'")
    warn("pip install 'hilbert-cli[offline]' (see scripts/setup.sh)")
    err = capsys.readouterr().err
    assert "error: needs pip install 'hilbert-cli[ray]'" in err
    assert "warning: pip install 'hilbert-cli[offline]'" in err


def test_predictions_name_the_true_class_true_label_not_label(tmp_path):
    """`label` is the predicted class in scores.parquet; predictions.parquet must not use it for the truth."""
    from types import SimpleNamespace

    from hilbert_cli.training.cv import CVResult
    from hilbert_cli.evaluation.train_report import write_predictions

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    r = CVResult(task="t", variant="hilbert", class_names=["neg", "pos"], indices=np.arange(3),
                 y=np.array([0, 0, 1]), oof_probs=probs, fold_of=np.array([0, 1, 1]), fold_aucs=[0.5, 0.5],
                 n_train=[2, 1], n_val=[0, 0], n_test=[1, 2])
    ds = SimpleNamespace(recording_ids=["a", "b", "c"], groups=None)
    path = write_predictions([r], ds, tmp_path / "predictions.parquet", {})
    t = pq.read_table(path).to_pydict()
    assert "label" not in t and "label_index" not in t
    assert t["true_label"] == ["neg", "neg", "pos"] and t["true_index"] == [0, 0, 1]
    assert t["predicted"] == ["neg", "pos", "neg"]


def test_help_texts_keep_their_brackets():
    """Rich markup would eat `[ray]` in `pip install 'hilbert-cli[ray]'` (the name a user must copy)."""
    r = _hilbert("score", "--help", env={**os.environ, "COLUMNS": "250"})
    assert r.returncode == 0 and "pip install 'hilbert-cli[ray]'" in r.stdout, r.stdout
