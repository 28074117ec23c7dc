"""Odd recording file names (issue 12, item 2): long names, bytes that are not UTF-8, spaces,
newlines, '%', Unicode. Every one must end as rows or as one error row, and the batch must finish.

The ids encode any name reversibly (docs/CONTRACTS.md, "Recording ids and work-file names"),
and the work-file names are bounded whatever the name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilbert_cli import batch
from hilbert_cli.engines.runner import run_batch
from hilbert_cli.parquet_io import read_table, write_table_atomic
from tests.fixtures_embed import tiny_sentence_model  # noqa: F401
from tests.fixtures_score import score_setup  # noqa: F401

SR = 16_000

#: (relative name as bytes, good audio?) — every kind of name the issue lists
ODD_NAMES: list[tuple[bytes, bool]] = [
    (b"a" * 236 + b"1.wav", True),  # two long names with the same 236-byte prefix
    (b"a" * 236 + b"2.wav", True),
    (b"bad \xff\xfe name.wav", True),  # not UTF-8
    (b"with space.wav", True),
    (b"new\nline.wav", True),
    (b"100% sure.wav", True),
    (b"my%20file.wav", True),  # looks percent-encoded already
    ("ünïcödé 日本.wav".encode(), True),
    (b"d" * 200 + b"/inner.wav", True),  # a long directory name
    (b"dir \xe9/x.wav", True),  # a directory name that is not UTF-8
    (b"broken \xff.wav", False),  # not audio, undecodable name
    (b"b" * 240 + b".wav", False),  # not audio, long name
]


def _wav_bytes(tmp: Path, seconds: float = 0.5) -> bytes:
    import soundfile as sf

    p = tmp / "tone.wav"
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(p), (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR, subtype="PCM_16")
    return p.read_bytes()


def _make(root: Path, names: list[tuple[bytes, bool]], wav: bytes, sidecar: str | None = None) -> None:
    """Create each file by its bytes name (os.fsencode paths), with an optional .txt sidecar."""
    for name, good in names:
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(wav if good else b"this is not audio\n")
        if good and sidecar is not None:
            with open(path[: -len(b".wav")] + b".txt", "w") as f:
                f.write(sidecar)


def _probe_and_write(out_root: Path):
    """A per-recording stage built on the real decoder: one row per recording, written by output_path."""
    from hilbert_cli.audio import probe

    def process(rec: batch.Recording) -> float:
        info = probe(rec.path)
        t = pa.table({"recording_id": [rec.recording_id], "duration_s": [float(info.duration_s)]})
        write_table_atomic(t, batch.output_path(out_root, "probe", rec.recording_id), {"config_hash": "h"})
        return float(info.duration_s)

    return process


def _check_all_accounted(root: Path, work: Path, names: list[tuple[bytes, bool]], res: batch.BatchResult) -> None:
    ids = {batch.name_text(n): good for n, good in names}
    assert sorted(res.done) == sorted(i for i, g in ids.items() if g)
    assert sorted(f["recording_id"] for f in res.failed) == sorted(i for i, g in ids.items() if not g)
    errors = batch.read_errors(work).to_pylist()
    assert sorted(r["recording_id"] for r in errors) == sorted(i for i, g in ids.items() if not g)  # one row each
    for rid in ids:
        # the id names its file again, and every work file name is bounded
        assert os.path.exists(os.path.join(os.fsencode(root), batch.name_bytes(rid)))
        for part in batch.output_path(work, "probe", rid).relative_to(work).parts:
            assert len(part.encode()) <= 255 - 40  # room for the temp file's prefix and suffix


def test_odd_names_each_end_as_rows_or_one_error_row(tmp_path):
    root, work = tmp_path / "in", tmp_path / "work"
    _make(root, ODD_NAMES, _wav_bytes(tmp_path))
    recs, skipped = batch.discover(root)
    assert len(recs) == len(ODD_NAMES) and not skipped
    res = run_batch(recs, stage="probe", out_root=work, process=_probe_and_write(work),
                    is_done=lambda r: False, show_progress=False)
    _check_all_accounted(root, work, ODD_NAMES, res)
    rows = {r["recording_id"]: r for f in (work / "probe").rglob("*.parquet") for r in read_table(f).to_pylist()}
    assert sorted(rows) == sorted(res.done) and all(r["duration_s"] == pytest.approx(0.5) for r in rows.values())
    # a resumed run finds every output it wrote (the same names again), and retries only the failures
    again = run_batch(recs, stage="probe", out_root=work, process=_probe_and_write(work),
                      is_done=lambda r: batch.is_complete(batch.output_path(work, "probe", r.recording_id), "h"),
                      show_progress=False)
    assert sorted(again.skipped) == sorted(res.done) and len(again.failed) == len(res.failed)


def test_odd_names_from_a_list_file(tmp_path):
    root = tmp_path / "in"
    _make(root, ODD_NAMES[:3], _wav_bytes(tmp_path))
    lst = os.path.join(os.fsencode(tmp_path), b"list.txt")
    with open(lst, "wb") as f:
        f.write(b"\n".join(b"in/" + n for n, _ in ODD_NAMES[:3]) + b"\n")
    recs, _ = batch.discover(os.fsdecode(lst))
    assert [r.recording_id for r in recs] == ["in/" + batch.name_text(n) for n, _ in ODD_NAMES[:3]]
    assert all(r.path.is_file() for r in recs)


def test_name_encoding_is_reversible_and_keeps_utf8():
    for name, _ in ODD_NAMES:
        text = batch.name_text(name)
        text.encode("utf-8")  # always valid UTF-8 (Arrow strings)
        assert batch.name_bytes(text) == name
    assert batch.name_text("ünïcödé 日本.wav") == "ünïcödé 日本.wav"
    assert batch.name_text(b"bad \xff.wav") == "bad %FF.wav"
    assert batch.name_text("100% sure.wav") == "100% sure.wav"
    assert batch.name_text("my%20file.wav") == "my%2520file.wav"  # so it cannot collide with b"my \x20..."
    assert batch.name_text(b"a%FF") != batch.name_text(b"a\xff")


def test_long_names_with_one_prefix_get_distinct_bounded_work_files():
    a, b = batch.name_text(ODD_NAMES[0][0]), batch.name_text(ODD_NAMES[1][0])
    pa_, pb = batch.work_name(a), batch.work_name(b)
    assert pa_ != pb and pa_.startswith("a" * 50) and pa_.endswith(".parquet")
    assert max(len(pa_.encode()), len(pb.encode())) <= batch.MAX_NAME_BYTES
    assert batch.work_name("site 1/short name.wav") == "site 1/short name.wav.parquet"  # readable, unchanged
    assert not batch.work_name(".hidden.wav").startswith(".")  # a work file is never hidden


# bytes a POSIX file name may hold: anything but '/' and NUL (and not "." / "..")
_NAME = st.binary(min_size=1, max_size=246).filter(
    lambda b: b"/" not in b and b"\0" not in b and not b.startswith(b".")
).map(lambda b: b + b".wav")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(_NAME, min_size=1, max_size=3, unique=True), good=st.lists(st.booleans(), min_size=3, max_size=3))
def test_property_any_names_each_end_as_rows_or_one_error_row(tmp_path_factory, names, good):
    tmp = tmp_path_factory.mktemp("prop")
    root, work = tmp / "in", tmp / "work"
    chosen = list(zip(names, good))
    _make(root, chosen, _WAV)
    recs, _ = batch.discover(root)
    assert len(recs) == len(chosen)
    res = run_batch(recs, stage="probe", out_root=work, process=_probe_and_write(work),
                    is_done=lambda r: False, show_progress=False)
    _check_all_accounted(root, work, chosen, res)
    shutil.rmtree(tmp)


def _tone() -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(SR // 4) / SR
    sf.write(buf, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


_WAV = _tone()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_odd_names_through_real_prepare_and_embed(tmp_path, tiny_sentence_model):  # noqa: F811
    """The real prepare (decode, VAD + diarization, sidecar transcripts) and embed stages."""
    from hilbert_cli.embed import embed_work_dir
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import features_dir, read_features
    from hilbert_cli.prepare import PrepareOptions, prepare_recordings
    from hilbert_cli.segment.options import SegmentOptions
    from tests.fixtures_prepare import KNOWN_SENTENCES, synth_speech

    wav = synth_speech(" ".join(KNOWN_SENTENCES[:2]), tmp_path / "speech.wav").read_bytes()
    names = [ODD_NAMES[i] for i in (0, 1, 2, 4, 8, 10)]
    root, work = tmp_path / "in", tmp_path / "work"
    _make(root, names, wav, sidecar=" ".join(KNOWN_SENTENCES[:2]))
    recs, _ = batch.discover(root)
    res = prepare_recordings(recs, PrepareOptions(diarization="none", device="cpu"), work, show_progress=False)
    _check_stage(names, res, batch.read_errors(work, "prepare"))
    o = EmbedOptions(audio="spec", text=str(tiny_sentence_model), device="cpu",
                     segment=SegmentOptions(emotion="off", min_words=4, min_s=1.0))
    res = embed_work_dir(work, o, show_progress=False)
    good = sorted(batch.name_text(n) for n, g in names if g)
    assert sorted(res.done) == good and not res.failed
    feats = read_features(features_dir(work, o))
    assert sorted(set(feats.column("recording_id").to_pylist())) == good


def _check_stage(names, res, errors: pa.Table) -> None:
    good = sorted(batch.name_text(n) for n, g in names if g)
    bad = sorted(batch.name_text(n) for n, g in names if not g)
    assert sorted(res.done) == good, res.failed
    assert sorted(errors.column("recording_id").to_pylist()) == bad
    assert all(m for m in errors.column("message").to_pylist())


def test_odd_names_through_score_end_to_end(score_setup, tmp_path):  # noqa: F811
    """`score` on odd names (sidecar transcripts next to each): a table with ok rows for every good
    recording and one error row for the bad one, each under its reversible id."""
    from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings

    src = sorted(score_setup.inputs.rglob("*interview*.wav"))[:3]
    names = [b"x" * 236 + b"1.wav", b"x" * 236 + b"2.wav", b"caf\xe9 \xff.wav"]
    root = tmp_path / "in"
    _make(root, [(b"broken \xff.wav", False)], b"")
    for name, wav in zip(names, src):
        rel = wav.relative_to(score_setup.inputs).with_suffix(".json")
        dst = os.path.join(os.fsencode(root), name)
        shutil.copy(wav, dst)
        shutil.copy(score_setup.transcripts / rel, dst[: -len(b".wav")] + b".json")
    run = score_recordings(root, ScoreOptions(model_dir=score_setup.model_dir, work_dir=tmp_path / "work",
                                              device="cpu"), tmp_path / "scores.parquet", show_progress=False)
    df = read_table(run.out_path).to_pandas()
    assert run.exit_code == 1 and run.n_recordings == 4
    ok = df[df.status == "ok"]
    assert sorted(set(ok.recording_id)) == sorted(batch.name_text(n) for n in names)
    assert list(df[df.status == "error"].recording_id) == [batch.name_text(b"broken \xff.wav")]
