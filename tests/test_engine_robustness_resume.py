"""Resume keyed by recording id must not hand one input folder's outputs to another folder's
file of the same relative name: `hilbert prepare` and `hilbert embed` check the audio file an
output was made from (batch.same_source, the check score's parts and caches use), so such a
file is prepared / embedded anew, and the file it replaced is not silently reused."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hilbert_cli import batch
from hilbert_cli.parquet_io import read_metadata
from hilbert_cli.prepare import PrepareOptions, prepare_recordings, words_path
from fixtures_prepare import have_tool, synth_speech
from tests.fixtures_embed import (  # noqa: F401
    prepare_meta, tiny_sentence_model, words_table, write_prepared, write_tone_wav,
)

SRT = "1\n00:00:00,200 --> 00:00:01,400\nA: {a}\n\n2\n00:00:01,600 --> 00:00:02,600\nB: {b}\n"


def _folder(root: Path, texts: dict[str, tuple[str, str]]) -> Path:
    """Recordings with a timed, speaker-labelled sidecar transcript each (prepare needs no model)."""
    for name, (a, b) in texts.items():
        synth_speech(f"{a}. {b}", root / f"{name}.wav")
        (root / f"{name}.srt").write_text(SRT.format(a=a, b=b))
    return root


def _words(work: Path, rid: str) -> list[str]:
    return pq.read_table(words_path(work, rid), columns=["word"]).column("word").to_pylist()


@pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")
def test_prepare_redoes_another_folders_file_of_the_same_name(tmp_path):
    first = _folder(tmp_path / "first", {"x": ("good morning", "hello there"), "y": ("one two", "three four five")})
    second = _folder(tmp_path / "second", {"x": ("blue sky", "green grass"), "y": ("red car", "fast road home")})
    work, options = tmp_path / "work", PrepareOptions(device="cpu")
    recs1, _ = batch.discover(first)
    r1 = prepare_recordings(recs1, options, work, show_progress=False)
    assert r1.done == ["x.wav", "y.wav"] and _words(work, "x.wav") == "good morning hello there".split()
    recs2, _ = batch.discover(second)
    r2 = prepare_recordings(recs2, options, work, show_progress=False)
    assert r2.done == ["x.wav", "y.wav"] and r2.skipped == []  # same ids and options, other files
    assert _words(work, "x.wav") == "blue sky green grass".split()
    assert Path(read_metadata(words_path(work, "y.wav"))["source_path"]) == (second / "y.wav").resolve()
    # and the same folder again is resumed: nothing redone
    again = prepare_recordings(recs2, options, work, show_progress=False)
    assert again.done == [] and again.skipped == ["x.wav", "y.wav"]


@pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")
def test_a_moved_input_folder_is_resumed_not_prepared_again(tmp_path, tiny_sentence_model):  # noqa: F811
    """The same files under another path (mv, rsync, another mount point) are known by their
    fingerprint: prepare skips them and relinks their tables, so embed reads the audio where it is
    now (the old folder is gone); a changed file under the new path is still prepared anew."""
    import shutil

    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import embed_work_dir
    from hilbert_cli.segment.options import SegmentOptions

    old = _folder(tmp_path / "old", {"x": ("good morning", "hello there"), "y": ("one two", "three four five")})
    work, options = tmp_path / "work", PrepareOptions(device="cpu")
    assert prepare_recordings(batch.discover(old)[0], options, work, show_progress=False).done == ["x.wav", "y.wav"]
    fp = read_metadata(words_path(work, "x.wav"))["source_fingerprint"]
    assert fp == batch.source_fingerprint(old / "x.wav")
    new = tmp_path / "new"
    shutil.move(old, new)
    synth_speech("blue sky. green grass", new / "y.wav")  # y changed on the way
    (new / "y.srt").write_text(SRT.format(a="blue sky", b="green grass"))
    moved = prepare_recordings(batch.discover(new)[0], options, work, show_progress=False)
    assert moved.skipped == ["x.wav"] and moved.done == ["y.wav"]
    assert read_metadata(words_path(work, "x.wav"))["source_path"] == str((new / "x.wav").resolve())
    assert _words(work, "x.wav") == "good morning hello there".split()
    assert _words(work, "y.wav") == "blue sky green grass".split()
    o = EmbedOptions(audio="spec", text=str(tiny_sentence_model), device="cpu",
                     segment=SegmentOptions(emotion="off", min_words=2, min_s=0.5))
    r = embed_work_dir(work, o, show_progress=False)
    assert r.done == ["x.wav", "y.wav"] and r.failed == []  # the audio read from its new place


def test_embed_redoes_words_prepared_again_from_another_file(tmp_path, tiny_sentence_model):  # noqa: F811
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import embed_work_dir, features_dir
    from hilbert_cli.segment.options import SegmentOptions

    work, rid = tmp_path / "work", "site/rec.wav"
    table = words_table(["I love my family and we are happy.", "Then everything became sad and hard."],
                        recording_id=rid)
    dur = float(table.column("end_s")[-1].as_py()) + 1.0
    first = write_tone_wav(tmp_path / "first" / "rec.wav", dur, seed=0, f0=120)
    second = write_tone_wav(tmp_path / "second" / "rec.wav", dur, seed=1, f0=200)
    write_prepared(work, rid, table, prepare_meta(first, rid, dur))
    o = EmbedOptions(audio="spec", text=str(tiny_sentence_model), device="cpu",
                     segment=SegmentOptions(emotion="off", min_words=4, min_s=1.0))
    r1 = embed_work_dir(work, o, show_progress=False)
    assert r1.done == [rid]
    path = features_dir(work, o) / "site" / "rec.wav.parquet"
    before = pq.read_table(path).column("audio_embedding").to_pylist()
    # the same words with the same prepare options (the same config hash), from another audio file
    write_prepared(work, rid, table, prepare_meta(second, rid, dur))
    r2 = embed_work_dir(work, o, show_progress=False)
    assert r2.done == [rid] and r2.skipped == []
    assert read_metadata(path)["prepare"]["source_path"] == str(second.resolve())
    assert pq.read_table(path).column("audio_embedding").to_pylist() != before  # the new file's audio
    assert embed_work_dir(work, o, show_progress=False).skipped == [rid]  # and then resumed
