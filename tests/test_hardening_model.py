"""A model directory is untrusted data (issue 12): what it may name, what is verified on load.

- the models its config.json names are registry aliases or local copies under the models dir /
  HF cache only: a pyannote config.yaml that names os.system never runs, inside or outside it;
- model.safetensors must match weights_sha256; model_id follows the weights and the config, so a
  shared --work never reuses another model's score parts; NaN probabilities become error rows;
- a bad model config fails at load, once, with one line naming config.json and the key (exit 2);
- onnxruntime's telemetry is off once hilbert has loaded it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hilbert_cli.batch import discover
from hilbert_cli.errors import ConfigError, ExitCode
from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings
from tests.fixtures_score import score_setup  # noqa: F401

REPO = Path(__file__).resolve().parents[1]

EVIL_PIPELINE = """\
pipeline:
  name: types.SimpleNamespace
preprocessors:
  evil:
    name: os.system
    params:
      command: "echo pwned > {marker}"
"""


def _copy_model(setup, dst: Path) -> Path:
    shutil.copytree(setup.model_dir, dst)
    return dst


def _task_dir(model: Path) -> Path:
    return model / "models" / "affect"


def _edit_config(model: Path, edit) -> None:
    path = _task_dir(model) / "config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))


def _one_recording(setup):
    recs, _ = discover(setup.inputs)
    return [next(r for r in sorted(recs) if r.recording_id not in setup.bad)]


def _opts(setup, model: Path, work: Path, **kw) -> ScoreOptions:
    kw.setdefault("transcripts", setup.transcripts)
    return ScoreOptions(model_dir=model, work_dir=work, device="cpu", **kw)


def _cli(*args, env=None):
    cmd = [sys.executable, "-c", "from hilbert_cli.cli import main; main()", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})})


def _lines(text: str) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.strip()]


def _evil_pipeline(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(EVIL_PIPELINE.format(marker=marker))
    return folder


def _use_pipeline(model: Path, pipeline: Path) -> None:
    def edit(cfg):
        opts = cfg["features_metadata"]["prepare"]["options"]
        opts.update(diarization="pyannote", diarization_model=str(pipeline), num_speakers=None)
    _edit_config(model, edit)


# ----------------------------------------------------------------------------- item 1: named models


def test_pipeline_config_inside_the_model_dir_never_runs(score_setup, tmp_path):
    """`hilbert score --offline` with a model dir whose config names its own malicious config.yaml."""
    model = _copy_model(score_setup, tmp_path / "model")
    marker = tmp_path / "MARKER"
    _use_pipeline(model, _evil_pipeline(model / "pipeline", marker))
    rec = _one_recording(score_setup)[0]
    # no --transcripts: a pipeline that loaded would diarize (and run os.system) before any ASR
    proc = _cli("--offline", "score", rec.path, "--model", model, "--out", tmp_path / "s.parquet",
                "--work", tmp_path / "w", "--device", "cpu", "--quiet")
    assert not marker.exists(), "the model directory's pipeline config ran code"
    assert proc.returncode == ExitCode.USAGE, proc.stderr[-2000:]
    lines = _lines(proc.stderr)
    assert len(lines) == 1 and "config.json" in lines[0] and "diarization_model" in lines[0], proc.stderr
    assert not (tmp_path / "s.parquet").exists()


def test_pipeline_config_outside_the_model_dir_never_runs(score_setup, tmp_path):
    model = _copy_model(score_setup, tmp_path / "model")
    marker = tmp_path / "MARKER"
    _use_pipeline(model, _evil_pipeline(tmp_path / "elsewhere" / "pipeline", marker))
    with pytest.raises(ConfigError) as e:
        score_recordings(_one_recording(score_setup), _opts(score_setup, model, tmp_path / "w", transcripts=None),
                         tmp_path / "s.parquet", show_progress=False)
    assert not marker.exists()
    msg = str(e.value)
    assert "\n" not in msg and "features_metadata.prepare.options.diarization_model" in msg and "config.json" in msg
    assert e.value.exit_code == ExitCode.USAGE and not (tmp_path / "w").exists()


def test_what_a_model_dir_may_name(tmp_path, monkeypatch):
    """Registry aliases and local copies under the models dir / HF cache; no hub id, no other path,
    nothing inside the model dir (also when the models dir is inside it)."""
    from hilbert_cli.registry import check_untrusted_reference

    models, cache, model_dir = tmp_path / "models", tmp_path / "hf", tmp_path / "run"
    for d in (models / "mine", cache / "snap", model_dir / "models" / "pyannote-community-1", tmp_path / "other"):
        d.mkdir(parents=True)
        (d / "config.yaml").write_text("x: 1\n")
    monkeypatch.setenv("HILBERT_MODELS_DIR", str(models))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    def check(name):
        check_untrusted_reference(name, key="k", source=model_dir / "config.json", untrusted_root=model_dir)

    for ok in ["spec", "resemblyzer", "pyannote-community-1", str(models / "mine"), str(cache / "snap")]:
        check(ok)
    bad = ["pyannote/speaker-diarization-3.1", "noSuchAlias", str(tmp_path / "other"), str(tmp_path / "missing"),
           str(model_dir / "models" / "pyannote-community-1"), "", 3]
    for name in bad:
        with pytest.raises(ConfigError, match="config.json: k = "):
            check(name)
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.prepare.options import PrepareOptions
    from hilbert_cli.scoring.stages import check_model_names

    for audio in ("spec+egemaps", "spec"):  # every part of a joined encoder is a registry alias
        check_model_names(PrepareOptions(), EmbedOptions(audio=audio), source=model_dir / "config.json",
                          untrusted_root=model_dir, embed_keys={})
    # the run directory as the models dir (cwd = the run dir): an alias would resolve inside it
    monkeypatch.setenv("HILBERT_MODELS_DIR", str(model_dir / "models"))
    with pytest.raises(ConfigError, match="inside the model directory"):
        check("pyannote-community-1")


# ----------------------------------------------------------------------------- item 2: weights


def _rewrite_weights(model: Path, change) -> None:
    """Change the weights and record their new sha256 (a model that loads, with other weights)."""
    from safetensors.torch import load_file, save_file

    from hilbert_cli.training.checkpoint import _sha256

    w = _task_dir(model) / "model.safetensors"
    sd = load_file(str(w))
    change(sd)
    save_file(sd, str(w))
    _edit_config(model, lambda cfg: cfg.update(weights_sha256=_sha256(w)))


def test_weights_that_do_not_match_their_sha256_fail_at_load(score_setup, tmp_path):
    model = _copy_model(score_setup, tmp_path / "model")
    w = _task_dir(model) / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-64:] = b"\xff\xff\xc0\x7f" * 16  # NaN in the last tensor: still a valid safetensors file
    w.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as e:
        score_recordings(_one_recording(score_setup), _opts(score_setup, model, tmp_path / "w"),
                         tmp_path / "s.parquet", show_progress=False)
    msg = str(e.value)
    assert "\n" not in msg and str(w) in msg and "weights_sha256" in msg and e.value.exit_code == ExitCode.USAGE
    assert not (tmp_path / "s.parquet").exists() and not (tmp_path / "w").exists()


def test_nan_probabilities_are_error_rows_never_ok(score_setup, tmp_path):
    import torch

    def poison(sd):
        for k, v in sd.items():
            if k.startswith("model.") and v.is_floating_point():
                sd[k] = torch.full_like(v, float("nan"))

    model = _copy_model(score_setup, tmp_path / "model")
    _rewrite_weights(model, poison)
    run = score_recordings(_one_recording(score_setup), _opts(score_setup, model, tmp_path / "w"),
                           tmp_path / "s.parquet", show_progress=False)
    df = pq.read_table(run.out_path).to_pandas()
    assert run.exit_code == ExitCode.PARTIAL and len(run.result.failed) == 1
    assert list(df.status) == ["error"] and df.error_type.iloc[0] == "NonFiniteScores"
    assert "non-finite" in df.error_message.iloc[0]


def test_model_id_follows_weights_and_config(score_setup, tmp_path):
    """Same --work, three models: each is scored afresh (never another's cached part)."""
    from hilbert_cli.training import load_model_dir

    a = _copy_model(score_setup, tmp_path / "a")
    b = _copy_model(score_setup, tmp_path / "b")
    _edit_config(b, lambda cfg: cfg.update(max_segments=1))  # other predictions, same weights
    c = _copy_model(score_setup, tmp_path / "c")
    _rewrite_weights(c, lambda sd: sd.update({k: v * 0.5 for k, v in sd.items()
                                             if k.startswith("model.head") and v.is_floating_point()}))
    ids = {load_model_dir(m).model_id for m in (a, b, c)}
    assert len(ids) == 3 and all(i.startswith("tiny@") for i in ids)
    recs, work = _one_recording(score_setup), tmp_path / "w"
    first = score_recordings(recs, _opts(score_setup, a, work), tmp_path / "a.parquet", show_progress=False)
    assert len(first.result.done) == 1
    for m in (b, c):
        run = score_recordings(recs, _opts(score_setup, m, work), tmp_path / f"{m.name}.parquet", show_progress=False)
        assert len(run.result.done) == 1 and not run.result.skipped, m.name
        assert pq.read_table(run.out_path).column("model_id").to_pylist() == [load_model_dir(m).model_id]
    pa_, pb = (np.asarray(pq.read_table(tmp_path / f"{n}.parquet").column("probabilities").to_pylist())
               for n in ("a", "b"))
    assert not np.allclose(pa_, pb)  # b's table is b's own scores, not a's cached ones


# ----------------------------------------------------------------------------- item 3: model config errors


def _feature_option(key: str, value):
    def edit(cfg):
        cfg["features_metadata"]["embed_options"][key] = value
    return edit


CONFIG_ERRORS = {
    "d_audio": ("d_audio", lambda cfg: cfg.update(d_audio=cfg["d_audio"] + 1)),
    "d_text": ("d_text", lambda cfg: cfg.update(d_text="24")),
    "max_segments": ("max_segments", lambda cfg: cfg.update(max_segments="lots")),
    "encoder_alias": ("features_metadata.embed_options.audio", _feature_option("audio", "noSuchEncoder")),
    "joined_encoder_alias": ("features_metadata.embed_options.audio", _feature_option("audio", "spec+noSuchEncoder")),
    "duplicate_classes": ("class_names", lambda cfg: cfg.update(class_names=["negative", "negative", "positive"])),
    "same_column": ("class_names", lambda cfg: cfg.update(class_names=["neg ative", "neg_ative", "positive"])),
    "model_config": ("model_config", lambda cfg: cfg["model_config"].update(d_model="big")),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_bad_model_config_fails_at_load_naming_the_key(score_setup, tmp_path, case):
    key, edit = CONFIG_ERRORS[case]
    model = _copy_model(score_setup, tmp_path / "model")
    _edit_config(model, edit)
    with pytest.raises(ConfigError) as e:
        score_recordings(_one_recording(score_setup), _opts(score_setup, model, tmp_path / "w"),
                         tmp_path / "s.parquet", show_progress=False)
    msg = str(e.value)
    assert "\n" not in msg and f"{_task_dir(model) / 'config.json'}: {key}" in msg, msg
    assert e.value.exit_code == ExitCode.USAGE
    assert not (tmp_path / "w").exists() and not (tmp_path / "s.parquet").exists()  # before any recording


def test_cli_bad_model_config_exit_2_once(score_setup, tmp_path):
    model = _copy_model(score_setup, tmp_path / "model")
    _edit_config(model, lambda cfg: cfg.update(max_segments="lots"))
    proc = _cli("score", score_setup.inputs, "--model", model, "--out", tmp_path / "s.parquet", "--work",
                tmp_path / "w", "--transcripts", score_setup.transcripts, "--device", "cpu", "--quiet")
    assert proc.returncode == ExitCode.USAGE, proc.stderr[-2000:]
    lines = _lines(proc.stderr)
    assert len(lines) == 1 and "config.json: max_segments = 'lots'" in lines[0], proc.stderr


# ----------------------------------------------------------------------------- item 4: onnxruntime telemetry


def test_onnxruntime_telemetry_is_off_once_hilbert_loads_it(monkeypatch):
    """The real onnxruntime's disable_telemetry_events runs (through a spy) when silero VAD loads."""
    import onnxruntime

    from hilbert_cli.prepare.diarize.vad import SileroVad

    real, calls = onnxruntime.disable_telemetry_events, []

    def spy():
        calls.append(True)
        return real()

    monkeypatch.setattr(onnxruntime, "disable_telemetry_events", spy)
    vad = SileroVad()
    assert calls, "onnxruntime telemetry left on"
    probs, n = vad.probabilities([np.zeros(1600, np.float32)])  # the session still works
    assert n == 1600 and probs.shape == (4,)


@pytest.mark.offline_models
def test_onnxruntime_telemetry_is_off_before_asr_can_run_its_vad(monkeypatch):
    """faster-whisper's vad_filter imports onnxruntime itself: hilbert's ASR turns telemetry off first."""
    import onnxruntime

    from hilbert_cli.prepare.asr import load_asr
    from hilbert_cli.prepare.options import PrepareOptions

    calls = []
    monkeypatch.setattr(onnxruntime, "disable_telemetry_events", lambda: calls.append(True))
    load_asr(PrepareOptions(vad_filter=True))
    assert calls, "onnxruntime telemetry left on for the ASR's VAD"
