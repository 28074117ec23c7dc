"""CLI surface: every command has help, doctor reports and exits non-zero when broken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from hilbert_cli.cli import app

HILBERT = str(Path(sys.executable).parent / "hilbert")
REPO = Path(__file__).resolve().parents[1]


def _command_paths(cmd, prefix=()):
    yield prefix
    if hasattr(cmd, "commands"):  # a group (Typer vendors its own click)
        for name, sub in cmd.commands.items():
            yield from _command_paths(sub, prefix + (name,))


def test_help_of_every_command():
    root = typer.main.get_command(app)
    paths = list(_command_paths(root))
    names = {p[0] for p in paths if p}
    assert {"doctor", "models"} <= names
    runner = CliRunner()
    for path in paths:
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage" in res.output, path


def test_version():
    proc = subprocess.run([HILBERT, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("hilbert ")


def test_doctor_ok():
    proc = subprocess.run([HILBERT, "doctor"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("torch", "faster-whisper", "pyannote.audio", "device", "PyAV FFmpeg"):
        assert name in proc.stdout  # the doctor's table is a result: stdout
    assert "installation ok" in proc.stdout


def test_doctor_reports_broken_install(tmp_path):
    # a required package that imports but is broken (as with an ABI mismatch)
    (tmp_path / "soundfile.py").write_text("raise ImportError('libsndfile.so: cannot open shared object file')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([HILBERT, "doctor", "--no-models"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3
    assert "soundfile" in proc.stderr and "broken installation" in proc.stderr


def test_unknown_command_is_a_usage_error():
    proc = subprocess.run([HILBERT, "no-such-command"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
