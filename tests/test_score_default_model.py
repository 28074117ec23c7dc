"""`hilbert score` without --model: $HILBERT_MODEL is the default model; with neither, one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

import hilbert_cli
from tests.fixtures_embed import write_tone_wav
from tests.fixtures_score import score_setup  # noqa: F401

REPO = Path(hilbert_cli.__file__).resolve().parents[1]
NO_MODEL = "no model: pass --model DIR or set HILBERT_MODEL"


def _score(*args, env_model: str | None) -> subprocess.CompletedProcess:
    """`hilbert score ...` of the hilbert_cli under test, with HILBERT_MODEL set to env_model (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "HILBERT_MODEL"}
    if env_model is not None:
        env["HILBERT_MODEL"] = env_model
    return subprocess.run([sys.executable, "-m", "hilbert_cli.cli", "score", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)


def _lines(text: str) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.strip()]


def test_no_model_option_and_no_env_var_is_one_line_exit_2(tmp_path):
    (tmp_path / "in").mkdir()
    for env_model in (None, ""):
        proc = _score(tmp_path / "in", "--out", tmp_path / "s.parquet", env_model=env_model)
        assert proc.returncode == 2, proc.stderr
        assert len(_lines(proc.stderr)) == 1 and NO_MODEL in proc.stderr and proc.stdout == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_env_var_is_the_model_and_the_option_wins_over_it(tmp_path):
    write_tone_wav(tmp_path / "in" / "a.wav", 1.0)  # a recording, so the model is what fails
    proc = _score(tmp_path / "in", "--out", tmp_path / "s.parquet", env_model=str(tmp_path / "from_env"))
    assert proc.returncode == 2 and len(_lines(proc.stderr)) == 1 and "from_env" in proc.stderr
    proc = _score(tmp_path / "in", "--model", tmp_path / "from_option", "--out", tmp_path / "s.parquet",
                  env_model=str(tmp_path / "from_env"))
    assert proc.returncode == 2 and "from_option" in proc.stderr and "from_env" not in proc.stderr


def test_score_with_only_hilbert_model_set_scores_the_recordings(score_setup, tmp_path):
    out = tmp_path / "scores.parquet"
    one = next(p for p in sorted(score_setup.inputs.rglob("*.wav")) if p.name not in score_setup.bad)
    proc = _score(one, "--out", out, "--transcripts", score_setup.transcripts, "--device", "cpu", "-q",
                  env_model=str(score_setup.model_dir))
    assert proc.returncode == 0, proc.stderr
    df = pq.read_table(out).to_pandas()
    assert list(df.status) == ["ok"] and df.model_id[0].startswith("tiny@") and df.task[0] == "affect"
    # the summary (what was scored, where the table is) is the result: on stdout, not mixed into the logs
    assert "hilbert score" in proc.stdout and "scored" in proc.stdout and "audio scored" in proc.stdout
    assert "hilbert score" not in proc.stderr
