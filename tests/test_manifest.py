"""Every recording accounted for (issue 17): each stage's manifest has one row per file found.

A folder of an ok recording (a tone with a timed two-speaker transcript), 60 s of silence, 30 s
of noise, a 0.1 s clip, a WAV that is only a header, a zero-length file, a text file named
.wav, a truncated WAV, and files that are not audio. The real prepare (silero VAD + speaker
clustering, a tiny random Whisper) runs over it: normally, resumed, sharded, from the CLI and
on the Ray engine; then embed (spec + a tiny sentence encoder) over its work dir.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fixtures_prepare import make_tone_wav, tiny_whisper_dir  # noqa: F401
from fixtures_score import write_bad_recordings
from hilbert_cli import batch
from hilbert_cli.errors import ExitCode
from hilbert_cli.manifest import MANIFEST_SCHEMA, read_manifest

SRT = """1
00:00:00,300 --> 00:00:01,400
A: good morning to you

2
00:00:01,700 --> 00:00:02,800
B: and a very good morning to you too
"""

#: file -> status after a first run of prepare
EXPECTED = {
    "ok.wav": "ok", "silent.wav": "no_speech", "noise.wav": "no_speech", "clip.wav": "no_speech",
    "truncated.wav": "no_speech",  # ten samples: audio, but nothing said
    "header_only.wav": "error", "empty.wav": "error", "not_audio.wav": "error",
    "ok.srt": "ignored", "notes.md": "ignored", ".hidden.wav": "ignored",
}
DONE = [f for f, s in EXPECTED.items() if s in ("ok", "no_speech")]


def _header_only_wav(path: Path) -> Path:
    """A valid 16 kHz mono PCM WAV header whose data chunk holds no samples."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", 0))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    make_tone_wav(d / "ok.wav", 3.2)
    (d / "ok.srt").write_text(SRT)
    sf.write(d / "silent.wav", np.zeros(16000 * 60, np.float32), 16000, subtype="PCM_16")
    rng = np.random.default_rng(0)
    sf.write(d / "noise.wav", (0.3 * rng.standard_normal(16000 * 30)).astype(np.float32), 16000)
    sf.write(d / "clip.wav", (0.3 * rng.standard_normal(1600)).astype(np.float32), 16000)
    _header_only_wav(d / "header_only.wav")
    write_bad_recordings(d)  # empty.wav, not_audio.wav, truncated.wav
    (d / "notes.md").write_text("not a recording")
    (d / ".hidden.wav").write_bytes(b"RIFF")
    assert sorted(p.name for p in d.iterdir()) == sorted(EXPECTED)
    return d


@pytest.fixture(scope="module")
def options(tiny_whisper_dir):  # noqa: F811
    from hilbert_cli.prepare import PrepareOptions

    return PrepareOptions(asr_model=str(tiny_whisper_dir), beam_size=1, cpu_threads=1, temperature_fallback=False,
                          device="cpu")


@pytest.fixture(scope="module")
def prepared(folder, options, tmp_path_factory):
    from hilbert_cli.prepare import Preparer, prepare_recordings

    work = tmp_path_factory.mktemp("work")
    recs, ignored = batch.discover(folder)
    preparer = Preparer(options)
    res = prepare_recordings(recs, options, work, show_progress=False, preparer=preparer, ignored=ignored)
    return work, recs, ignored, preparer, res


def _by_id(table) -> dict[str, dict]:
    rows = table.to_pylist()
    ids = [r["recording_id"] for r in rows]
    assert len(ids) == len(set(ids)), ids  # every file exactly once
    return dict(zip(ids, rows))


def _statuses(table) -> dict[str, str]:
    return {k: r["status"] for k, r in _by_id(table).items()}


def test_every_file_in_the_manifest_with_its_status(prepared):
    work, _, _, _, res = prepared
    path = work / "manifest" / "prepare" / "part-0-of-1.parquet"
    assert res.manifest_path == path
    table = read_manifest(path)
    assert table.schema.remove_metadata() == MANIFEST_SCHEMA
    assert _statuses(table) == EXPECTED
    rows = _by_id(table)
    assert not any(r["skipped"] for r in rows.values())
    ok = rows["ok.wav"]
    assert ok["n_words"] == 12 and ok["n_speakers"] == 2 and ok["duration_s"] == pytest.approx(3.2, abs=0.01)
    assert ok["error_type"] is None and ok["seconds"] > 0 and ok["config_hash"]
    for f, dur in (("silent.wav", 60.0), ("noise.wav", 30.0), ("clip.wav", 0.1)):
        assert rows[f]["n_words"] == 0 and rows[f]["n_speakers"] == 0
        assert rows[f]["duration_s"] == pytest.approx(dur, abs=0.01)
    header = rows["header_only.wav"]
    assert header["error_type"] == "InputError" and "no audio samples" in header["message"]
    assert "header_only.wav" in header["message"] and header["n_words"] is None
    assert "empty file" in rows["empty.wav"]["message"] and "cannot decode" in rows["not_audio.wav"]["message"]
    assert "not an audio file" in rows["notes.md"]["message"] and rows[".hidden.wav"]["message"] == "hidden file"
    assert all(r["stage"] == "prepare" and r["shard"] == "0/1" for r in rows.values())


def test_summary_and_exit_code_come_from_the_manifest(prepared):
    _, _, _, _, res = prepared
    assert sorted(res.done) == sorted(DONE) and len(res.failed) == 3
    assert res.exit_code == ExitCode.PARTIAL
    line = res.summary()
    assert "5 done (1 ok, 4 no speech)" in line and "0 skipped" in line and "3 failed" in line
    assert "3 ignored" in line and str(res.manifest_path) in line
    res.rows = [r for r in res.rows if not r["error_type"]]  # the same result without its error rows
    assert res.exit_code == ExitCode.OK and "0 failed" in res.summary()


def test_resumed_run_keeps_every_row_and_marks_the_done_ones_skipped(prepared, options):
    from hilbert_cli.prepare import prepare_recordings

    work, recs, ignored, preparer, first = prepared
    before = _by_id(read_manifest(first.manifest_path))
    again = prepare_recordings(recs, options, work, show_progress=False, preparer=preparer, ignored=ignored)
    after = _by_id(read_manifest(again.manifest_path))
    assert _statuses(read_manifest(again.manifest_path)) == EXPECTED  # resume-safe: nothing dropped
    for f, row in after.items():
        done_before = EXPECTED[f] in ("ok", "no_speech")
        assert row["skipped"] is done_before, f
        if done_before:  # the facts are read back from the outputs, not lost
            assert row["seconds"] == 0
            assert {k: row[k] for k in ("duration_s", "n_words", "n_speakers", "config_hash")} == \
                {k: before[f][k] for k in ("duration_s", "n_words", "n_speakers", "config_hash")}
    assert "0 done" in again.summary() and "5 skipped" in again.summary() and "3 failed" in again.summary()
    assert again.exit_code == ExitCode.PARTIAL  # the errors were retried, and failed again


def test_shard_parts_cover_every_file_exactly_once(prepared, options, tmp_path):
    from hilbert_cli.prepare import prepare_recordings

    src, recs, ignored, preparer, _ = prepared
    work = tmp_path / "work"
    shutil.copytree(src, work)  # the unsharded manifest part is there too: replaced by the shards'
    n = 3
    for k in range(n):
        prepare_recordings(recs, options, work, shard=batch.Shard(k, n), show_progress=False, preparer=preparer,
                           ignored=ignored)
    parts = sorted(p.name for p in (work / "manifest" / "prepare").iterdir())
    assert parts == [f"part-{k}-of-{n}.parquet" for k in range(n)]
    ids = [i for k in range(n) for i in read_manifest(work / "manifest" / "prepare" / parts[k])
           .column("recording_id").to_pylist()]
    assert sorted(ids) == sorted(EXPECTED)  # the union: each file once
    assert _statuses(read_manifest(work / "manifest" / "prepare")) == EXPECTED  # a glob read: the whole picture
    import pyarrow.dataset as ds

    assert ds.dataset(str(work / "manifest" / "prepare"), format="parquet").count_rows() == len(EXPECTED)


def test_cli_prints_the_manifest_counts_and_exits_partial(prepared, folder, options, tmp_path, monkeypatch, capsys):
    from hilbert_cli.cli import main

    src = prepared[0]
    work = tmp_path / "work"
    shutil.copytree(src, work)
    monkeypatch.setattr(sys, "argv", ["hilbert", "prepare", str(folder), "--out", str(work), "--asr-model",
                                      options.asr.model, "--beam-size", "1", "--cpu-threads", "1",
                                      "--no-temperature-fallback", "--device", "cpu", "-q"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = " ".join(capsys.readouterr().out.split())  # the summary is the result: stdout
    assert exit_info.value.code == ExitCode.PARTIAL
    assert "0 done, 5 skipped (already done), 3 failed, 3 ignored" in out
    assert _statuses(read_manifest(work / "manifest" / "prepare")) == EXPECTED


def test_embed_manifest_has_every_prepared_recording(prepared, tiny_sentence_model):
    from hilbert_cli.embed import embed_work_dir
    from hilbert_cli.embed.options import EmbedOptions

    work = prepared[0]
    opts = EmbedOptions(audio="spec", text=str(tiny_sentence_model), device="cpu",
                        segment={"emotion": "off", "min_words": 2, "min_s": 0.5})
    res = embed_work_dir(work, opts, show_progress=False)
    assert res.manifest_path == work / "manifest" / "embed" / "part-0-of-1.parquet"
    rows = _by_id(read_manifest(res.manifest_path))
    assert {k: r["status"] for k, r in rows.items()} == {f: EXPECTED[f] for f in DONE}
    assert rows["ok.wav"]["n_segments"] > 0 and rows["ok.wav"]["n_words"] == 12
    assert all(rows[f]["n_segments"] == 0 for f in DONE if f != "ok.wav")
    assert res.exit_code == ExitCode.OK and "(1 ok, 4 no speech)" in res.summary()


from fixtures_embed import tiny_sentence_model  # noqa: E402,F401


def _comparable(table) -> list[dict]:
    """Rows without this run's timings and resume flags (the local manifest is a resumed run's)."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "skipped")} for r in table.to_pylist()]


def test_ray_engine_writes_the_same_manifest(prepared, options, tmp_path):
    ray = pytest.importorskip("ray")
    from hilbert_cli.engines.ray_cluster import init_local
    from hilbert_cli.prepare import prepare_recordings

    local_work, recs, ignored, _, _ = prepared
    if ray.is_initialized():
        ray.shutdown()
    init_local(num_cpus=1, object_store_memory=200 * 1024**2)
    try:
        res = prepare_recordings(recs, options, tmp_path / "work", show_progress=False, engine="ray", ignored=ignored,
                                 engine_options={"show_progress": False, "concurrency": 1})
    finally:
        ray.shutdown()
    ray_table = read_manifest(res.manifest_path)
    local_table = read_manifest(local_work / "manifest" / "prepare")
    assert _comparable(ray_table) == _comparable(local_table)
    assert res.exit_code == ExitCode.PARTIAL and all(r["seconds"] > 0 for r in ray_table.to_pylist()
                                                    if r["status"] not in ("ignored",))
