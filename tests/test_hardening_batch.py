"""Batch hardening (issue 12): a full disk, temp files of killed and concurrent runs, output
permissions, an empty input, a --transcripts directory that is not there.

The CLI is run in-process through hilbert_cli.cli.main (the console entry point), so a full
disk can be injected by making pyarrow's writer raise ENOSPC after N writes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hilbert_cli import batch, parquet_io
from hilbert_cli.engines.runner import run_batch
from hilbert_cli.cli import main
from hilbert_cli import errors
from hilbert_cli.errors import ExitCode
from hilbert_cli.parquet_io import read_table, write_table_atomic
from tests.fixtures_embed import prepare_meta, tiny_sentence_model, words_table, write_tone_wav  # noqa: F401


def _main(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run `hilbert ARGS` as the console script does: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["hilbert", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


#: when this run started, as the cleanup sees it (the process start; before the fix: now)
_RUN_STARTED = getattr(parquet_io, "PROCESS_STARTED", time.time())


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _full_after(monkeypatch, last_ok) -> list[str]:
    """Make every Parquet write fail as a full disk does (a few bytes land first) once a write
    with last_ok(temp path) has succeeded. Returns the temp paths written to, in order."""
    real, calls, full = pq.write_table, [], []

    def write_table(table, where, *a, **kw):
        calls.append(str(where))
        if not full:
            real(table, where, *a, **kw)
            if last_ok(str(where)):
                full.append(True)
            return
        with open(where, "wb") as f:
            f.write(b"PAR1" + b"\0" * 96)
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", write_table)
    return calls


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- full disk


def _embed_work(root: Path, n: int = 3) -> Path:
    from hilbert_cli.prepare.pipeline import words_path

    work = root / "work"
    sents = ["Every day is a joy and I feel great about our beautiful home.",
             "But then my father died and everything became terrible and sad."]
    for k in range(n):
        rid = f"rec {k}.wav"
        t = words_table(sents, recording_id=rid, start=0.5)
        dur = float(t.column("end_s")[-1].as_py()) + 1.0
        wav = write_tone_wav(root / "audio" / rid, dur, seed=k)
        write_table_atomic(t, words_path(work, rid), prepare_meta(wav, rid, dur))
    return work


def test_full_disk_in_embed_cli_one_line_exit_code_outputs_intact_rerun_finishes(
        tmp_path, monkeypatch, capsys, tiny_sentence_model):  # noqa: F811
    work = _embed_work(tmp_path)
    before = _snapshot(work)
    cmd = ["embed", work, "--audio", "spec", "--text", tiny_sentence_model, "--emotion", "off",
           "--min-words", "4", "--min-s", "1.0", "--device", "cpu", "-q"]
    # the disk fills up once the first recording is embedded: the next write (recording 2's) fails
    calls = _full_after(monkeypatch, lambda tmp: f"{os.sep}features{os.sep}" in tmp)
    rc, err = _main(monkeypatch, capsys, *cmd)
    assert rc == ExitCode.DISK_FULL == 4, err
    lines = _error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "disk full" in lines[0] and "rec 1.wav.parquet" in lines[0] and "rec 1.wav" in calls[-1]
    assert "100 bytes" in lines[0]  # how much of the file was written before the disk filled up
    written = _snapshot(work)
    assert all(written[p] == b for p, b in before.items())  # nothing that was there is lost
    assert not [p for p in written if p.name.endswith(".tmp")]  # no temp left behind
    assert len(list((work / "features").rglob("*.parquet"))) == 1  # the first recording is done
    assert batch.read_errors(work).num_rows == 0  # a full disk is not the recordings' fault

    monkeypatch.undo()  # space freed
    rc, err = _main(monkeypatch, capsys, *cmd)
    assert rc == 0, err
    assert len(list((work / "features").rglob("*.parquet"))) == 3
    after = _snapshot(work)
    assert all(after[p] == b for p, b in written.items())  # finished work is kept, not redone


def _wrapped(code: int) -> Exception:
    """A library's own temp file on a full disk, wrapped in the library's own error."""
    try:
        raise OSError(code, os.strerror(code), "/scratch/cache.bin")
    except OSError as exc:
        try:
            raise RuntimeError("decoder failed") from exc
        except RuntimeError as wrapped:
            return wrapped


@pytest.mark.parametrize("failure", ["enospc", "edquot", "errno lost"])
def test_full_disk_stops_the_batch_instead_of_failing_each_recording(tmp_path, failure):
    recs = [batch.Recording(f"r{i}.wav", tmp_path / f"r{i}.wav") for i in range(4)]
    seen = []
    exc = {"enospc": _wrapped(errno.ENOSPC), "edquot": _wrapped(errno.EDQUOT),
           "errno lost": RuntimeError("Error : System error : No space left on device.")}[failure]

    def process(rec):
        seen.append(rec.recording_id)
        if rec.recording_id == "r2.wav":
            raise exc
        write_table_atomic(pa.table({"x": [1]}), batch.output_path(tmp_path, "out", rec.recording_id))
        return 1.0

    with pytest.raises(errors.DiskFull, match="/scratch/cache.bin" if failure != "errno lost" else "while processing r2.wav") as info:
        run_batch(recs, stage="unit", out_root=tmp_path, process=process, is_done=lambda r: False,
                  show_progress=False)
    assert info.value.exit_code == ExitCode.DISK_FULL
    assert seen == ["r0.wav", "r1.wav", "r2.wav"]  # stopped: every later recording would fail the same way
    assert batch.read_errors(tmp_path).num_rows == 0
    assert [read_table(batch.output_path(tmp_path, "out", f"r{i}.wav")).num_rows for i in range(2)] == [1, 1]


def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    from hilbert_cli.parquet_io import atomic_write

    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"x" * 1234)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(errors.DiskFull) as info:
        atomic_write(path, write)
    msg = str(info.value)
    assert str(path) in msg and "1234 bytes" in msg and "\n" not in msg
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


# ----------------------------------------------------------------------------- temp files


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def live_pid():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p.pid
    p.kill()
    p.wait()


def _temp(d: Path, name: str, pid: int, age_s: float, other_host: bool = False) -> Path:
    """A temp named as docs/CONTRACTS.md says atomic_write names one (`.NAME.HOST-PID.RANDOM.tmp`),
    of this host (or another) and `pid`, last written `age_s` before this run started."""
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
    if other_host:
        host = "f" * 6 if host != "f" * 6 else "e" * 6
    p = d / f".{name}.{host}-{pid}.a1b2c3d4.tmp"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"partial")
    t = _RUN_STARTED - age_s
    os.utime(p, (t, t))
    return p


def test_stale_temps_in_work_are_cleaned_at_start_live_ones_kept(tmp_path, live_pid):
    work = tmp_path / "work"
    dead = _dead_pid()
    stale = [
        _temp(work / "prepare" / "words", "a.wav.parquet", dead, 5),  # killed run on this host
        _temp(work / "errors" / "prepare", "b.wav.parquet", dead, 5),
        _temp(work / "embed", "c.wav.parquet", live_pid, 7200, other_host=True),  # another host, idle 2 h
    ]
    legacy = work / "score" / ".d.wav.parquet.k3j4h5g6.tmp"  # an older hilbert's temp, idle 2 h
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"x")
    os.utime(legacy, (_RUN_STARTED - 7200,) * 2)
    stale.append(legacy)
    kept = [
        _temp(work / "prepare" / "words", "e.wav.parquet", live_pid, 5),  # a live run's, same host
        _temp(work / "embed", "f.wav.parquet", dead, 60, other_host=True),  # another host, recent
        _temp(work / "prepare" / "turns", "g.wav.parquet", dead, -30),  # newer than this run
    ]
    other = work / "prepare" / ".stage1" / "h.wav.parquet"  # hidden work files are not temps
    other.parent.mkdir(parents=True)
    other.write_bytes(b"x")
    kept.append(other)

    res = run_batch([batch.Recording("r.wav", tmp_path / "r.wav")], stage="unit", out_root=work,
                    process=lambda rec: 0.0, is_done=lambda r: False, show_progress=False)
    assert res.done == ["r.wav"]
    assert [p for p in stale if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []


def _assemble_setup(tmp_path: Path):
    """A score worker's state (schema, key, hash) and two finished score parts under WORK/score/KEY."""
    from hilbert_cli.scoring.pipeline import part_path
    from hilbert_cli.contracts.scores import rows_to_table, scores_schema

    schema = scores_schema({"affect": ["negative", "positive"]})
    worker = SimpleNamespace(schema=schema, options=SimpleNamespace(work_dir=tmp_path / "work"), key="m",
                             config_hash="h", bundle=SimpleNamespace(model_id="m@1"))
    recs = [batch.Recording(f"r{i}.wav", tmp_path / f"r{i}.wav") for i in range(2)]
    for r in recs:
        row = {"recording_id": r.recording_id, "task": "affect", "status": "ok", "label": "positive",
               "class_names": ["negative", "positive"], "probabilities": [0.25, 0.75]}
        write_table_atomic(rows_to_table([row], schema), part_path(worker.options.work_dir, "m", r.recording_id),
                           {"config_hash": "h", "status": "ok"})
    return worker, recs


def test_assemble_never_deletes_another_runs_temp(tmp_path, live_pid):
    from hilbert_cli.scoring.pipeline import assemble

    worker, recs = _assemble_setup(tmp_path)
    out = tmp_path / "out" / "scores.parquet"
    theirs = _temp(out.parent, out.name, live_pid, 5)  # a concurrent run, still assembling
    stale = _temp(out.parent, out.name, _dead_pid(), 5)  # a run killed while assembling
    assert assemble(recs, worker, out, {}) == 2
    assert theirs.exists() and not stale.exists()
    assert pq.read_table(out).column("recording_id").to_pylist() == ["r0.wav", "r1.wav"]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_scores_and_shard_parts_get_the_umask_mode(tmp_path, umask_022):
    from hilbert_cli.scoring.merge import merge_scores
    from hilbert_cli.scoring.pipeline import assemble, shard_output_path

    worker, recs = _assemble_setup(tmp_path)
    out = tmp_path / "scores.parquet"
    assemble(recs, worker, out, {})
    part = shard_output_path(tmp_path / "parts" / "", batch.Shard(1, 2))
    assemble(recs[1:], worker, part, {})
    assert out.stat().st_mode & 0o777 == umask_022 and part.stat().st_mode & 0o777 == umask_022
    ds, _ = merge_scores([out], tmp_path / "by_task", partition_by="task")
    assert ds.stat().st_mode & 0o777 == 0o755  # a directory: 0o777 & ~umask, not mkdtemp's 0700


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("command", ["prepare", "score", "embed"])
def test_empty_input_folder_exits_2_with_one_line(tmp_path, monkeypatch, capsys, command):
    empty = tmp_path / "empty"
    (empty / "prepare" / "words").mkdir(parents=True)
    (empty / "notes.txt").write_text("not audio")
    args = {
        "prepare": ["prepare", empty, "--out", tmp_path / "w"],
        "score": ["score", empty, "--model", tmp_path / "model", "--out", tmp_path / "s.parquet"],
        "embed": ["embed", empty],
    }[command]
    rc, err = _main(monkeypatch, capsys, *args)
    assert rc == ExitCode.USAGE
    lines = _error_lines(err)
    assert len(lines) == 1 and "no recordings found under" in lines[0] and str(empty) in lines[0], err
    assert not (tmp_path / "s.parquet").exists()


def test_score_transcripts_dir_that_does_not_exist_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    write_tone_wav(tmp_path / "in" / "a.wav", 1.0)
    rc, err = _main(monkeypatch, capsys, "score", tmp_path / "in", "--model", tmp_path / "model",
                    "--transcripts", tmp_path / "no_such_dir", "--out", tmp_path / "s.parquet")
    assert rc == ExitCode.USAGE
    lines = _error_lines(err)
    assert len(lines) == 1 and "--transcripts" in lines[0] and "no_such_dir" in lines[0], err
