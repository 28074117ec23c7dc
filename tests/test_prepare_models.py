"""Model backends of prepare with tiny local models: the pyannote backend (random local pipeline,
bounded windows, cross-window speaker linking), the batched ASR path, model-loading errors."""

from __future__ import annotations

import numpy as np
import pytest

from hilbert_cli.batch import Recording
from hilbert_cli.errors import ConfigError, HilbertError, ModelUnavailable
from hilbert_cli.prepare import PrepareOptions, Preparer

from fixtures_prepare import build_tiny_pyannote_pipeline, have_tool, tiny_whisper_dir, two_speaker_interview  # noqa: F401

needs_espeak = pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")


def _bare_pyannote(**opts):
    from hilbert_cli.prepare.diarize.pyannote_backend import PyannoteDiarizer

    d = object.__new__(PyannoteDiarizer)
    d.options = PrepareOptions(diarization="pyannote", **opts).diarization
    return d


def test_link_speakers_across_windows_by_embedding():
    rng = np.random.default_rng(0)
    voices = rng.standard_normal((3, 16))
    d = _bare_pyannote()
    centroids, counts = [], []
    seg = {"A": [(0.0, 5.0)], "B": [(5.0, 9.0)]}
    m1 = d._link(["A", "B"], np.stack([voices[0], voices[1]]), centroids, counts, seg)
    assert m1 == {"A": "SPEAKER_00", "B": "SPEAKER_01"}
    # next window: local labels swapped, a new third voice, one speaker with no embedding
    seg2 = {"X": [(10.0, 12.0)], "Y": [(12.0, 15.0)], "Z": [(15.0, 16.0)], "N": [(16.0, 16.2)]}
    emb2 = np.stack([voices[1] + 0.05 * rng.standard_normal(16), voices[0] + 0.05 * rng.standard_normal(16),
                     voices[2], np.full(16, np.nan)])
    m2 = d._link(["X", "Y", "Z", "N"], emb2, centroids, counts, seg2)
    assert m2["X"] == "SPEAKER_01" and m2["Y"] == "SPEAKER_00" and m2["Z"] == "SPEAKER_02"
    assert m2["N"] == "SPEAKER_03"  # no embedding: cannot be linked, kept apart
    # a cap on the number of speakers folds new voices into the closest known one
    capped = _bare_pyannote(max_speakers=2)
    c2, n2 = [], []
    capped._link(["A", "B"], np.stack([voices[0], voices[1]]), c2, n2, seg)
    m3 = capped._link(["Z"], np.stack([voices[0] * 0.9 + voices[2] * 0.1]), c2, n2, {"Z": [(20.0, 21.0)]})
    assert m3 == {"Z": "SPEAKER_00"}


@needs_espeak
def test_pyannote_backend_with_tiny_local_pipeline(tiny_whisper_dir, tmp_path):  # noqa: F811
    # random PyanNet + a small x-vector embedding (WeSpeakerResNet34 is ~10x slower on CPU)
    tiny_pyannote_dir = build_tiny_pyannote_pipeline(tmp_path / "pipeline", embedding="xvector", segmentation_step=1.0)
    turns = [("A", "hello and thank you for coming in today how have you been feeling this week"),
             ("B", "i have been feeling a little tired but mostly fine thank you for asking"),
             ("A", "can you tell me more about your sleep over the last few nights"),
             ("B", "i usually go to bed at eleven and wake up around seven in the morning"),
             ("A", "that sounds quite regular do you feel rested when you wake up"),
             ("B", "not always sometimes i wake up during the night and cannot fall asleep again"),
             ("A", "thank you that is helpful")]
    path, ref = two_speaker_interview(tmp_path / "long interview.wav", turns, gap_s=1.5)
    duration = ref[-1][2] + 0.5
    assert duration > 30.0
    opts = PrepareOptions(diarization="pyannote", diarization_model=str(tiny_pyannote_dir), diarization_window_s=30.0,
                          asr_model=str(tiny_whisper_dir), beam_size=1, temperature_fallback=False, max_speakers=3,
                          cpu_threads=1)
    prep = Preparer(opts)
    out = prep.process(Recording("long interview.wav", path))
    meta = out.metadata
    assert meta["diarization"]["n_windows"] == 2  # > 30 s: two bounded windows
    assert meta["models"]["diarization"]["backend"] == "pyannote"
    assert meta["models"]["diarization"]["pipeline"]["source"] == "path"
    t = out.turns.to_pylist()
    assert all(0.0 <= r["start_s"] < r["end_s"] <= duration + 0.1 for r in t)
    assert all(r["speaker"].startswith("SPEAKER_") for r in t)
    assert len({r["speaker"] for r in t}) <= 3 + 2  # the cap, plus speakers with no embedding
    assert [r["start_s"] for r in t] == sorted(r["start_s"] for r in t)


def test_pyannote_hub_alias_offline_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HILBERT_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    from hilbert_cli.prepare.diarize import load_diarizer

    with pytest.raises(ModelUnavailable) as ei:
        load_diarizer(PrepareOptions(diarization="pyannote"))
    assert "pyannote-community-1" in str(ei.value) and "\n" not in str(ei.value)


def test_asr_model_errors_are_one_line(tmp_path, tiny_whisper_dir):  # noqa: F811
    from hilbert_cli.prepare.asr import load_asr

    with pytest.raises(HilbertError):
        load_asr(PrepareOptions(asr_model=str(tmp_path / "missing")))
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(ConfigError, match="model.bin"):
        load_asr(PrepareOptions(asr_model=str(empty)))
    with pytest.raises(ModelUnavailable, match="unknown model"):
        load_asr(PrepareOptions(asr_model="no-such-alias"))


@needs_espeak
def test_batched_asr_path_maps_times_back(tiny_whisper_dir, tmp_path):  # noqa: F811
    """The GPU path (BatchedInferencePipeline over several windows at once), forced on CPU."""
    from faster_whisper import BatchedInferencePipeline

    from hilbert_cli.prepare.asr import load_asr

    path, ref = two_speaker_interview(tmp_path / "b.wav", [("A", "one two three four five"), ("B", "six seven eight nine ten")],
                                      gap_s=3.0)
    asr = load_asr(PrepareOptions(asr_model=str(tiny_whisper_dir), beam_size=1, temperature_fallback=False, batch_size=4))
    asr.batched = BatchedInferencePipeline(asr.model)
    windows = [(ref[0][1] - 0.2, ref[0][2] + 0.2), (ref[1][1] - 0.2, ref[1][2] + 0.2)]
    words, info = asr.transcribe(path, windows)
    assert info["n_asr_windows"] == 2
    for w in words:
        assert any(a - 1e-6 <= w.start_s <= w.end_s <= b + 1e-6 for a, b in windows), w
