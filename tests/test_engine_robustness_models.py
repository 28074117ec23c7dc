"""`hilbert prepare --jobs N`: each worker process loads its own models, so the parent only checks
that they can be had (one line when not) and loads none of them (memory and seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hilbert_cli.errors import ConfigError, ModelUnavailable
from hilbert_cli.prepare import PrepareOptions
from hilbert_cli.prepare.stage import check_diarizer, check_models
from fixtures_prepare import have_tool, synth_speech

REPO = Path(__file__).resolve().parents[1]
SRT = "1\n00:00:00,200 --> 00:00:01,200\nA: {a}\n\n2\n00:00:01,400 --> 00:00:02,400\nB: {b}\n"


def test_diarizer_check_is_one_line_and_loads_nothing(tmp_path):
    bad = [({"diarization": "pyannote", "diarization_model": str(tmp_path)}, ConfigError, "config.yaml"),
           ({"diarization": "pyannote", "diarization_model": "no-such-pipeline"}, ModelUnavailable, "no-such-pipeline")]
    for opts, error, needle in bad:
        with pytest.raises(error) as info:
            check_diarizer(PrepareOptions(**opts))
        assert needle in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "config.yaml").write_text("pipeline: {name: os.system}\n")  # never read, let alone run
    check_diarizer(PrepareOptions(diarization="pyannote", diarization_model=str(tmp_path)))
    # the config.yaml file itself, which pyannote's from_pretrained (and --jobs 1) takes too
    check_diarizer(PrepareOptions(diarization="pyannote", diarization_model=str(tmp_path / "config.yaml")))
    check_diarizer(PrepareOptions(num_speakers=1))


def test_checking_the_default_models_imports_none_of_them():
    code = ("import sys; from hilbert_cli.prepare import PrepareOptions; from hilbert_cli.prepare.stage import "
            "check_models; check_models(PrepareOptions()); "
            "print([m for m in ('torch', 'resemblyzer', 'ctranslate2', 'onnxruntime', 'torchaudio', "
            "'hilbert_cli.prepare.diarize.speaker_encoders') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")
def test_prepare_with_jobs_loads_no_model_in_the_parent(tmp_path):
    inp = tmp_path / "in"
    for name, (a, b) in {"x": ("good morning", "hello there"), "y": ("one two", "three four")}.items():
        synth_speech(f"{a}. {b}", inp / f"{name}.wav")
        (inp / f"{name}.srt").write_text(SRT.format(a=a, b=b))
    code = (f"import json, sys; from hilbert_cli import run_prepare; "
            f"r = run_prepare({str(inp)!r}, {str(tmp_path / 'work')!r}, {{'device': 'cpu'}}, jobs=2, progress=False); "
            "print(json.dumps({'ok': r.ok, 'failed': r.failed, 'loaded': [m for m in ('resemblyzer', 'onnxruntime', "
            "'hilbert_cli.prepare.diarize.speaker_encoders') if m in sys.modules]}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"ok": ["x.wav", "y.wav"], "failed": [], "loaded": []}
    # and a model that cannot be had is still one line before anything runs
    code = (f"from hilbert_cli import run_prepare; run_prepare({str(inp)!r}, {str(tmp_path / 'w2')!r}, "
            "{'diarization': 'pyannote', 'diarization_model': 'no-such-pipeline'}, jobs=2, progress=False)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "no-such-pipeline" in out.stderr and not (tmp_path / "w2").exists()
