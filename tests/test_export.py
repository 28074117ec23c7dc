"""`hilbert export`: RTTM, SRT, WebVTT and TextGrid from the prepare tables, read back with the
libraries their users read them with (pyannote, srt, webvtt-py, praatio)."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fixtures_embed import words_table
from hilbert_cli import batch
from hilbert_cli.parquet_io import read_table, write_table_atomic
from hilbert_cli.prepare.pipeline import TURNS_SCHEMA, WORDS_SCHEMA, turns_path, words_path

import hilbert_cli

REPO = Path(hilbert_cli.__file__).resolve().parents[1]


def _hilbert(*args: str) -> subprocess.CompletedProcess:
    """The CLI of the hilbert_cli under test (not whichever one the venv's script points at)."""
    return subprocess.run([sys.executable, "-m", "hilbert_cli.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)

ODD_ID = "site 1/inter view\t03 " + "x" * 130 + ".wav"  # spaces, a tab, a name too long for a file
SENTENCES = [("SPEAKER_00", "how are you feeling today"), ("SPEAKER_01", "not great R&D <laugh> honestly"),
             ("SPEAKER_01", "I slept badly all week and I do not know why it keeps happening"),
             ("SPEAKER_00", "tell me more")]


def _turns(words: pa.Table, rid: str, overlap: bool = False) -> pa.Table:
    """One turn per run of a speaker's words (ms grid, as RTTM keeps it); `overlap`: the second turn
    starts 0.2 s before the first one ends (diarization overlaps)."""
    d = words.to_pydict()
    turns: list[list] = []
    for s, e, k in zip(d["start_s"], d["end_s"], d["speaker"]):
        if turns and turns[-1][2] == k:
            turns[-1][1] = e
        else:
            turns.append([s, e, k])
    if overlap:
        turns[1][0] = turns[0][1] - 0.2
    rows = [dict(recording_id=rid, turn_index=i, speaker=k, start_s=round(s, 3), end_s=round(e, 3), is_target=True)
            for i, (s, e, k) in enumerate(turns)]
    return pa.Table.from_pylist(rows, schema=TURNS_SCHEMA)


def _prepared(work: Path, rid: str, sentences=SENTENCES, overlap: bool = False) -> tuple[pa.Table, pa.Table]:
    """Write the words and turns tables `hilbert prepare` would write for `rid`."""
    words = words_table(sentences, recording_id=rid).cast(WORDS_SCHEMA)
    turns = _turns(words, rid, overlap)
    meta = {"stage": "prepare", "recording_id": rid, "duration_s": 30.0, "config_hash": "prep0"}
    write_table_atomic(turns, turns_path(work, rid), {**meta, "table": "turns"})
    write_table_atomic(words, words_path(work, rid), {**meta, "table": "words"})
    return words, turns


def _export(work: Path, out: Path, formats=("rttm", "srt", "vtt", "textgrid"), **kw):
    from hilbert_cli.export import export_work_dir

    run = export_work_dir(work, formats, out, show_progress=False, **kw)
    assert run.exit_code == 0, run.result.failed
    return run


def test_rttm_read_back_with_pyannote_equals_the_turns_table(tmp_path):
    from pyannote.database.util import load_rttm

    from hilbert_cli.export import export_path, recording_id_from_uri, rttm_uri

    work, out = tmp_path / "work", tmp_path / "out"
    tables = {rid: _prepared(work, rid, overlap=rid == "b.wav")[1] for rid in ("a.wav", "b.wav", ODD_ID)}
    _export(work, out, ["rttm"])
    for rid, turns in tables.items():
        path = export_path(out, rid, "rttm")
        assert path.is_file() and len(path.name.encode()) <= batch.MAX_NAME_BYTES + 10
        loaded = load_rttm(str(path))
        assert list(loaded) == [rttm_uri(rid)] and " " not in rttm_uri(rid) and "\t" not in rttm_uri(rid)
        assert recording_id_from_uri(rttm_uri(rid)) == rid
        got = sorted((round(s.start, 3), round(s.end, 3), k) for s, _, k in loaded[rttm_uri(rid)].itertracks(True))
        d = turns.to_pydict()
        want = sorted(zip(d["start_s"], d["end_s"], d["speaker"]))
        assert [k for *_, k in got] == [k for *_, k in want]
        np.testing.assert_allclose([t[:2] for t in got], [t[:2] for t in want], atol=1e-3)


def test_srt_and_vtt_read_back_give_the_words_in_order_with_speakers(tmp_path):
    import srt
    import webvtt

    from hilbert_cli.export import export_path
    from hilbert_cli.prepare.transcripts import read_transcript

    work, out = tmp_path / "work", tmp_path / "out"
    words, _ = _prepared(work, ODD_ID)
    _export(work, out, ["srt", "vtt"], max_cue_s=3.0)
    d = words.to_pydict()
    want = list(zip(d["speaker"], d["word"]))

    subs = list(srt.parse(export_path(out, ODD_ID, "srt").read_text(encoding="utf-8")))
    got_srt = [(c.content.split(": ", 1)[0], w) for c in subs for w in c.content.split(": ", 1)[1].split()]
    caps = webvtt.read(str(export_path(out, ODD_ID, "vtt")))
    got_vtt = [(c.voice, w) for c in caps for w in html.unescape(c.text).split()]
    assert got_srt == want and got_vtt == want
    # cues: never longer than max_cue_s, never two speakers, times from the words
    assert len(subs) > 4 and all((c.end - c.start).total_seconds() <= 3.0 for c in subs)
    assert caps[0].start_time.in_milliseconds() / 1000 == pytest.approx(d["start_s"][0], abs=1e-3)
    assert [c.start.total_seconds() for c in subs] == pytest.approx([c.start_time.in_milliseconds() / 1000 for c in caps], abs=1e-3)
    # hilbert's own --transcripts reader takes both back, with their speakers
    for fmt in ("srt", "vtt"):
        tr = read_transcript(export_path(out, ODD_ID, fmt))
        assert tr.has_speakers and [s.speaker for s in tr.segments] == [c.voice for c in caps]


def test_textgrid_read_back_has_a_words_tier_per_speaker_and_a_turns_tier(tmp_path):
    from praatio import textgrid

    from hilbert_cli.export import export_path

    work, out = tmp_path / "work", tmp_path / "out"
    words, turns = _prepared(work, "b.wav", overlap=True)
    _export(work, out, ["textgrid"])
    tg = textgrid.openTextgrid(str(export_path(out, "b.wav", "textgrid")), includeEmptyIntervals=False)
    assert tg.tierNames == ("SPEAKER_00", "SPEAKER_01", "turns")
    assert tg.maxTimestamp == pytest.approx(30.0)
    d = words.to_pydict()
    for spk in ("SPEAKER_00", "SPEAKER_01"):
        entries = tg.getTier(spk).entries
        mine = [(s, e, w) for s, e, w, k in zip(d["start_s"], d["end_s"], d["word"], d["speaker"]) if k == spk]
        assert [x.label for x in entries] == [w for *_, w in mine]
        np.testing.assert_allclose([(x.start, x.end) for x in entries], [(s, e) for s, e, _ in mine], atol=1e-6)
    t = turns.to_pydict()
    regions = tg.getTier("turns").entries
    # the overlap of turn 0 and turn 1 is its own interval labelled by both speakers
    assert [x.label for x in regions] == ["SPEAKER_00", "SPEAKER_00+SPEAKER_01", "SPEAKER_01", "SPEAKER_00"]
    assert regions[1].start == pytest.approx(t["start_s"][1]) and regions[1].end == pytest.approx(t["end_s"][0])
    assert regions[-1].end == pytest.approx(t["end_s"][-1])


def test_cli_export_writes_the_chosen_formats_and_isolates_a_bad_recording(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    _prepared(work, "a.wav")
    _prepared(work, "sub/b.wav")
    proc = _hilbert("export", str(work), "--formats", "vtt,RTTM", "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    listed = sorted(proc.stdout.splitlines())
    assert listed == sorted(str(out / n) for n in ("a.wav.rttm", "a.wav.vtt", "sub/b.wav.rttm", "sub/b.wav.vtt"))
    assert sorted(str(p) for p in out.rglob("*") if p.is_file()) == listed  # no srt, no TextGrid

    turns_path(work, "sub/b.wav").unlink()  # a recording whose turns table is gone
    proc = _hilbert("export", str(work), "-q")
    assert proc.returncode == 1, proc.stderr
    assert (work / "export" / "a.wav.TextGrid").is_file() and not (work / "export" / "sub").exists()
    err = read_table(batch.error_path(work, "export", "sub/b.wav")).to_pylist()
    assert err[0]["recording_id"] == "sub/b.wav" and "turns" in err[0]["message"]


@pytest.mark.parametrize("args, needle", [(["--formats", "rttm,docx"], "--formats 'rttm,docx'"),
                                          (["--max-cue-s", "0"], "--max-cue-s")])
def test_cli_export_bad_usage_is_one_line_exit_2(tmp_path, args, needle):
    work = tmp_path / "work"
    _prepared(work, "a.wav")
    proc = _hilbert("export", str(work), *args)
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (work / "export").exists()


def test_cli_export_of_a_directory_without_prepared_recordings_is_exit_2(tmp_path):
    proc = _hilbert("export", str(tmp_path))
    assert proc.returncode == 2 and "no prepared recordings" in proc.stderr
