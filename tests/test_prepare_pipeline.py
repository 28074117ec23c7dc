"""`hilbert prepare` end to end on a small corpus of good and bad inputs (tiny random Whisper,
real silero VAD + Resemblyzer): tables and metadata, bad inputs, sidecars, resume, overwrite,
sharding, CLI exit codes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from hilbert_cli import batch
from hilbert_cli.parquet_io import read_metadata
from hilbert_cli.prepare import PrepareOptions, Preparer, prepare_recordings, turns_path, words_path
from hilbert_cli.prepare.pipeline import TURNS_SCHEMA, WORDS_SCHEMA

from table_compare import assert_same_table
from fixtures_prepare import have_tool, run_main as _main, synth_speech, tiny_whisper_dir, two_speaker_interview  # noqa: F401

pytestmark = pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")

SRT = """1
00:00:00,200 --> 00:00:00,700
A: good morning

2
00:00:01,000 --> 00:00:01,900
B: good morning to you
"""

GOOD = ["interview.wav", "sub dir/ünïcode näme.wav", "tel8k.wav", "six48k.wav", "s24.wav", "f32.wav",
        "silence.wav", "noise.wav", "truncated.wav", "sidecar.wav", "clip.flac"]
BAD = ["empty.wav", "text.wav", "zero.wav", "dangling.wav"]


def _sox(*args):
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    two_speaker_interview(d / "interview.wav", [
        ("A", "hello and thank you for coming in today"),
        ("B", "i have been feeling a little tired but mostly fine"),
        ("A", "can you tell me more about your sleep"),
    ])
    clip = synth_speech("the quick brown fox jumps over the lazy dog", d / "clip.wav")
    (d / "sub dir").mkdir()
    synth_speech("she sells sea shells by the sea shore", d / "sub dir" / "ünïcode näme.wav", voice="en+f3", pitch=70)
    _sox(clip, "-r", "8000", d / "tel8k.wav")
    _sox(clip, "-r", "48000", "-c", "6", d / "six48k.wav")
    _sox(clip, "-b", "24", d / "s24.wav")
    _sox(clip, "-e", "floating-point", "-b", "32", d / "f32.wav")
    _sox(clip, d / "clip.flac")
    os.remove(clip)
    sf.write(d / "silence.wav", np.zeros(16000 * 4, dtype=np.float32), 16000, subtype="PCM_16")
    rng = np.random.default_rng(0)
    sf.write(d / "noise.wav", (0.3 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    raw = (d / "s24.wav").read_bytes()
    (d / "truncated.wav").write_bytes(raw[: len(raw) // 2])
    synth_speech("good morning. good morning to you", d / "sidecar.wav")
    (d / "sidecar.srt").write_text(SRT)
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("not audio at all\n" * 100)
    sf.write(d / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    (d / "dangling.wav").symlink_to(d / "nowhere.wav")
    (d / "notes.md").write_text("not a recording")
    (d / ".hidden.wav").write_bytes(b"RIFF")
    return d


@pytest.fixture(scope="module")
def options(tiny_whisper_dir) -> PrepareOptions:  # noqa: F811
    return PrepareOptions(asr_model=str(tiny_whisper_dir), beam_size=1, cpu_threads=1, speaker="dominant",
                          temperature_fallback=False)


@pytest.fixture(scope="module")
def prepared(corpus, options, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    recs, skipped = batch.discover(corpus)
    preparer = Preparer(options)
    result = prepare_recordings(recs, options, work, show_progress=False, preparer=preparer)
    return work, recs, skipped, result, preparer


def _bad_ids(recs) -> list[str]:
    return sorted(r.recording_id for r in recs if r.path.name in BAD)


def test_discovery_reports_hidden_and_non_audio(prepared):
    _, recs, skipped, _, _ = prepared
    assert sorted(r.path.relative_to(r.path.parent.parent if "/" in r.recording_id else r.path.parent).as_posix()
                  for r in recs) == sorted(GOOD + BAD)
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons[".hidden.wav"] == "hidden file"
    assert "not an audio" in reasons["notes.md"] and "sidecar.srt" in reasons


def test_bad_inputs_one_error_row_each_and_batch_continues(prepared):
    work, recs, _, result, _ = prepared
    assert sorted(result.done) == sorted(GOOD)
    assert sorted(r["recording_id"] for r in result.failed) == _bad_ids(recs)
    assert result.exit_code == 1
    errors = batch.read_errors(work, "prepare")
    assert sorted(errors.column("recording_id").to_pylist()) == _bad_ids(recs)
    by_id = {Path(p).name: m for p, m in zip(errors.column("path").to_pylist(), errors.column("message").to_pylist())}
    assert "empty file" in by_id["empty.wav"]
    assert "cannot decode" in by_id["text.wav"]
    assert "zero-length" in by_id["zero.wav"]
    assert "no such file" in by_id["dangling.wav"]
    assert all("\n" not in m for m in by_id.values())
    assert set(errors.column("stage").to_pylist()) == {"prepare"}


def test_tables_follow_the_contract(prepared, corpus, options):
    work, _, _, _, _ = prepared
    for rid in GOOD:
        w = pq.read_table(words_path(work, rid))
        t = pq.read_table(turns_path(work, rid))
        assert w.schema.remove_metadata() == WORDS_SCHEMA
        assert t.schema.remove_metadata() == TURNS_SCHEMA
        meta = read_metadata(words_path(work, rid))
        assert meta["stage"] == "prepare" and meta["recording_id"] == rid
        assert Path(meta["source_path"]).is_absolute() and Path(meta["source_path"]) == (corpus / rid).resolve()
        assert PrepareOptions.model_validate(meta["options"]) == options
        assert set(meta["input"]) >= {"sample_rate", "channels", "codec"}
        assert meta["config_hash"] and "models" in meta and "target_speaker" in meta
        starts = w.column("start_s").to_numpy()
        assert np.all(np.diff(starts) >= 0)
        assert w.column("word_index").to_pylist() == list(range(w.num_rows))
        assert set(w.column("recording_id").to_pylist()) <= {rid}
        if w.num_rows:
            assert np.all(w.column("end_s").to_numpy() >= starts)
            assert starts.min() >= 0 and w.column("end_s").to_numpy().max() <= meta["duration_s"] + 0.5


def test_formats_and_rates_recorded(prepared):
    work = prepared[0]
    m8 = read_metadata(words_path(work, "tel8k.wav"))
    m6 = read_metadata(words_path(work, "six48k.wav"))
    m24 = read_metadata(words_path(work, "s24.wav"))
    assert m8["input"]["sample_rate"] == 8000 and m8["input"]["channels"] == 1
    assert m6["input"]["sample_rate"] == 48000 and m6["input"]["channels"] == 6
    assert abs(m8["duration_s"] - m6["duration_s"]) < 0.05 and abs(m24["duration_s"] - m6["duration_s"]) < 0.05
    mt = read_metadata(words_path(work, "truncated.wav"))
    assert 0.3 * m24["duration_s"] < mt["duration_s"] < 0.7 * m24["duration_s"]
    for rid in ("tel8k.wav", "six48k.wav", "s24.wav", "f32.wav", "clip.flac"):
        turns = pq.read_table(turns_path(work, rid))
        assert turns.num_rows >= 1  # speech found at every rate / layout / sample format


def test_silence_is_valid_with_no_rows(prepared):
    work = prepared[0]
    w = pq.read_table(words_path(work, "silence.wav"))
    t = pq.read_table(turns_path(work, "silence.wav"))
    assert w.num_rows == 0 and t.num_rows == 0
    meta = read_metadata(words_path(work, "silence.wav"))
    assert abs(meta["duration_s"] - 4.0) < 0.01 and meta["target_speaker"] is None


def test_interview_turns_speakers_and_target(prepared):
    work = prepared[0]
    t = pq.read_table(turns_path(work, "interview.wav")).to_pylist()
    speakers = {r["speaker"] for r in t}
    assert speakers == {"SPEAKER_00", "SPEAKER_01"}  # two espeak voices, three turns
    assert [r["speaker"] for r in t] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    meta = read_metadata(turns_path(work, "interview.wav"))
    assert meta["target_speaker"] in speakers
    assert all(r["is_target"] == (r["speaker"] == meta["target_speaker"]) for r in t)
    w = pq.read_table(words_path(work, "interview.wav")).to_pylist()
    assert all(r["is_target"] == (r["speaker"] == meta["target_speaker"]) for r in w)
    assert all(r["asr_segment"] is not None for r in w)


def test_sidecar_transcript_replaces_asr(prepared):
    work = prepared[0]
    w = pq.read_table(words_path(work, "sidecar.wav")).to_pylist()
    assert [r["word"] for r in w] == "good morning good morning to you".split()
    assert [r["speaker"] for r in w] == ["A", "A", "B", "B", "B", "B"]
    assert w[0]["start_s"] == pytest.approx(0.2) and w[-1]["end_s"] == pytest.approx(1.9)
    assert all(r["probability"] is None and r["avg_logprob"] is None for r in w)
    meta = read_metadata(words_path(work, "sidecar.wav"))
    assert meta["text_source"]["kind"] == "transcript" and meta["text_source"]["format"] == "srt"
    assert meta["target_speaker"] == "B"  # dominant by speech time
    t = pq.read_table(turns_path(work, "sidecar.wav")).to_pylist()
    assert [(r["speaker"], r["start_s"], r["end_s"]) for r in t] == [("A", 0.2, 0.7), ("B", 1.0, 1.9)]


def test_resume_second_run_does_no_work(prepared, options, corpus):
    work, recs, _, _, preparer = prepared
    before = {rid: words_path(work, rid).stat().st_mtime_ns for rid in GOOD}
    again = prepare_recordings(recs, options, work, show_progress=False, preparer=preparer)
    assert again.done == [] and sorted(again.skipped) == sorted(GOOD)
    assert sorted(r["recording_id"] for r in again.failed) == _bad_ids(recs)
    assert {rid: words_path(work, rid).stat().st_mtime_ns for rid in GOOD} == before


def test_overwrite_and_changed_options_redo(prepared, options):
    work, recs, _, _, preparer = prepared
    one = [r for r in recs if r.recording_id == "clip.flac"]
    t0 = words_path(work, "clip.flac").stat().st_mtime_ns
    res = prepare_recordings(one, options, work, overwrite=True, show_progress=False, preparer=preparer)
    assert res.done == ["clip.flac"] and words_path(work, "clip.flac").stat().st_mtime_ns != t0
    # other options: another config hash, so not done yet (a sidecar recording: no model loads)
    side = [r for r in recs if r.recording_id == "sidecar.wav"]
    other = options.model_copy(update={"speaker": "all"})
    res = prepare_recordings(side, other, work, show_progress=False)
    assert res.done == ["sidecar.wav"]
    assert read_metadata(words_path(work, "sidecar.wav"))["options"]["speaker"] == "all"
    res = prepare_recordings(side, other, work, show_progress=False)
    assert res.skipped == ["sidecar.wav"]


def test_shards_partition_the_input(prepared, options):
    work, recs, _, _, preparer = prepared
    seen = []
    for k in range(3):
        res = prepare_recordings(recs, options, work, shard=f"{k}/3", show_progress=False, preparer=preparer)
        ids = res.done + res.skipped + [r["recording_id"] for r in res.failed]
        seen.append(set(ids))
    assert sum(len(s) for s in seen) == len(recs)
    assert set().union(*seen) == {r.recording_id for r in recs}
    # stable: the same shard picks the same recordings again
    assert {r.recording_id for r in batch.select_shard(recs, batch.Shard(1, 3))} == seen[1]


def test_transcripts_dir_txt_without_times(prepared, options, tmp_path):
    work, recs, _, _, _ = prepared
    tr = tmp_path / "transcripts"
    tr.mkdir()
    (tr / "clip.txt").write_text("The quick brown fox\njumps over the lazy dog.\n")
    one = [r for r in recs if r.recording_id == "clip.flac"]
    opts = options.model_copy(update={"transcripts": str(tr)})
    res = prepare_recordings(one, opts, tmp_path / "w", show_progress=False)
    assert res.done == ["clip.flac"]
    w = pq.read_table(words_path(tmp_path / "w", "clip.flac")).to_pylist()
    assert [r["word"] for r in w] == "The quick brown fox jumps over the lazy dog.".split()
    speech = pq.read_table(turns_path(tmp_path / "w", "clip.flac")).to_pylist()
    assert speech and w[0]["start_s"] >= speech[0]["start_s"] - 1e-6 and w[-1]["end_s"] <= speech[-1]["end_s"] + 1e-6
    assert all(r["speaker"] == speech[0]["speaker"] for r in w)  # one voice: diarization's speaker
    meta = read_metadata(words_path(tmp_path / "w", "clip.flac"))
    assert meta["text_source"]["format"] == "txt" and not meta["text_source"]["has_times"]
    assert "asr" not in meta["models"] and "diarization" in meta["models"]


def test_worker_factory_pickles_for_other_engines(options, tmp_path):
    import functools
    import pickle

    from hilbert_cli.prepare.stage import PrepareStage, is_done

    f = pickle.loads(pickle.dumps(PrepareStage(options, tmp_path).factory()))
    proc = f()
    assert proc.preparer.options == options and proc.preparer._asr is None  # models load lazily, per worker
    pickle.dumps(functools.partial(is_done, work_dir=tmp_path, chash="x"))


def test_low_memory_two_passes_same_tables(prepared, options, tmp_path):
    work, recs, _, _, preparer = prepared
    subset = [r for r in recs if r.recording_id in ("clip.flac", "sidecar.wav", "empty.wav")]
    res = prepare_recordings(subset, options, tmp_path, show_progress=False, preparer=preparer, low_memory=True)
    assert sorted(res.done) == ["clip.flac", "sidecar.wav"] and [f["recording_id"] for f in res.failed] == ["empty.wav"]
    assert preparer._diarizer is None and preparer._asr is None  # both freed after their pass
    assert not [p for p in (tmp_path / "prepare" / ".stage1").rglob("*") if p.is_file()]  # stashes dropped
    for rid in ("clip.flac", "sidecar.wav"):
        a = pq.read_table(words_path(work, rid)).select(["word", "start_s", "speaker"]).to_pylist()
        b = pq.read_table(words_path(tmp_path, rid)).select(["word", "start_s", "speaker"]).to_pylist()
        assert a == b
    again = prepare_recordings(subset, options, tmp_path, show_progress=False, preparer=preparer, low_memory=True)
    assert sorted(again.skipped) == ["clip.flac", "sidecar.wav"] and again.done == []


def test_two_jobs_same_tables_as_one(prepared, options, tmp_path):
    """--jobs 2 (two worker processes, each on its share of the cores) writes the tables,
    error rows and manifest one job wrote (issue 15)."""
    work, recs, _, _, _ = prepared
    subset = [r for r in recs if r.recording_id in ("clip.flac", "interview.wav", "sidecar.wav", "empty.wav")]
    one = prepare_recordings(subset, options, tmp_path / "one", show_progress=False)
    two = prepare_recordings(subset, options, tmp_path / "two", show_progress=False, jobs=2)
    assert two.done == one.done == ["clip.flac", "interview.wav", "sidecar.wav"]
    assert [f["recording_id"] for f in two.failed] == ["empty.wav"]
    for rid in two.done:
        for path in (words_path, turns_path):
            a, b = pq.read_table(path(tmp_path / "one", rid)), pq.read_table(path(tmp_path / "two", rid))
            assert a.num_rows, (rid, path.__name__)
            assert_same_table(a, b, (rid, path.__name__))  # scores to float32 noise: see table_compare
            assert_same_table(pq.read_table(path(work, rid)), b, rid)  # also the module's one-job run
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in two.rows] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in one.rows]


def test_cli_exit_codes(prepared, corpus, tiny_whisper_dir, tmp_path):  # noqa: F811
    work = prepared[0]
    args = ["prepare", corpus, "--out", work, "--asr-model", tiny_whisper_dir, "--beam-size", "1",
            "--speaker", "dominant", "--no-temperature-fallback", "-q"]
    assert _main(args) == 1  # the bad inputs still fail; the rest is already done
    good = tmp_path / "good"
    good.mkdir()
    import shutil

    shutil.copy(corpus / "sidecar.wav", good / "sidecar.wav")
    (good / "sidecar.srt").write_text(SRT)
    assert _main(["prepare", good, "--out", tmp_path / "w2", "--asr-model", tiny_whisper_dir, "-q"]) == 0
    assert _main(["prepare", good, "--out", tmp_path / "w4", "--asr-model", tiny_whisper_dir, "--low-memory", "-q"]) == 0
    assert (tmp_path / "w2" / "prepare" / "words" / "sidecar.wav.parquet").is_file()
    assert _main(["prepare", good, "--out", tmp_path / "w3", "--asr-model", tmp_path / "nope"]) == 2
    assert _main(["prepare", good, "--out", tmp_path / "w3", "--shard", "3/2"]) == 2
    assert _main(["prepare", good, "--out", tmp_path / "w3", "--min-speakers", "3", "--max-speakers", "2"]) == 2
    assert not (tmp_path / "w3" / "prepare").exists()
