"""`--jobs N` when a worker process dies under a recording (kill -9, the out-of-memory killer):
the batch goes on in a fresh pool, the recording that killed its worker gets one error row
naming its file, the ones that were in flight beside it are done as usual, and the outputs and
the manifest are written (exit code: some failed).

The stage is real (streamed decoding, atomic Parquet writes, config-hash resume) and lives at
module level, so the spawned worker processes unpickle it; on `kill-me.wav` the worker sends
itself SIGKILL, exactly what the OOM killer does.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pyarrow as pa
import pytest

from hilbert_cli import batch, manifest
from hilbert_cli.engines.local import DIED, LocalEngine
from hilbert_cli.errors import ExitCode
from hilbert_cli.parquet_io import read_metadata, write_table_atomic
from hilbert_cli.stages import Stage
from fixtures_prepare import make_tone_wav

pytestmark = pytest.mark.timeout(300)


class KillStage(Stage):
    """Length of each recording -> <out>/len/<id>.parquet; a worker handed kill-me.wav kills itself."""

    name = "len"
    config_hash = "len-v1"

    def __init__(self, out_root: Path) -> None:
        self.out_root = Path(out_root)
        self.parent = os.getpid()

    def outputs(self, rec):
        return {"len": batch.output_path(self.out_root, "len", rec.recording_id)}

    def process(self, rec):
        from hilbert_cli.audio import SAMPLE_RATE, stream_chunks

        if "kill-me" in rec.recording_id and os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return sum(c.samples.size for c in stream_chunks(rec.path)) / SAMPLE_RATE

    def write(self, rec, seconds):
        meta = {"config_hash": self.config_hash, "recording_id": rec.recording_id, "pid": os.getpid()}
        write_table_atomic(pa.table({"seconds": [seconds]}), self.outputs(rec)["len"], meta)
        return seconds


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[batch.Recording]:
    root = tmp_path_factory.mktemp("audio")
    for i in range(5):
        make_tone_wav(root / f"r{i}.wav", 1.0 + i)
    make_tone_wav(root / "kill-me.wav", 2.0)
    recs, _ = batch.discover(root)
    return recs


def test_a_worker_killed_under_a_recording_fails_only_that_recording(recordings, tmp_path):
    out = tmp_path / "out"
    res = LocalEngine(jobs=2).run_stage(recordings, KillStage(out), show_progress=False)
    others = [r.recording_id for r in recordings if r.recording_id != "kill-me.wav"]
    assert res.done == others  # the one in flight beside it too, run again in a fresh pool
    assert [f["recording_id"] for f in res.failed] == ["kill-me.wav"]
    row = res.failed[0]
    assert row["error_type"] == "WorkerLost" and DIED in row["message"] and "kill-me.wav" in row["message"]
    assert "\n" not in row["message"]
    assert batch.read_errors(out, "len").column("recording_id").to_pylist() == ["kill-me.wav"]
    assert sorted(p.name for p in (out / "len").glob("*.parquet")) == sorted(f"{rid}.parquet" for rid in others)
    assert os.getpid() not in {read_metadata(p)["pid"] for p in (out / "len").glob("*.parquet")}
    assert res.audio_s == pytest.approx(sum(1.0 + i for i in range(5)), abs=0.01)
    # the manifest: one row per recording, and the exit code says some failed
    manifest.finish(res, out / "manifest" / "len")
    rows = {r["recording_id"]: r for r in manifest.read_manifest(out / "manifest" / "len").to_pylist()}
    assert set(rows) == {r.recording_id for r in recordings}
    assert rows["kill-me.wav"]["status"] == "error" and all(rows[rid]["status"] == "ok" for rid in others)
    assert res.exit_code == ExitCode.PARTIAL
    # resume: the rest is done, the poison file is tried (and fails) again
    again = LocalEngine(jobs=2).run_stage(recordings, KillStage(out), show_progress=False)
    assert again.skipped == others and [f["recording_id"] for f in again.failed] == ["kill-me.wav"]


def test_with_overwrite_a_killed_recording_fails_even_when_done_before(recordings, tmp_path):
    out = tmp_path / "out"
    first = LocalEngine(jobs=1).run_stage(recordings, KillStage(out), show_progress=False)  # in this process: no kill
    assert len(first.done) == len(recordings)
    res = LocalEngine(jobs=2).run_stage(recordings, KillStage(out), overwrite=True, show_progress=False)
    assert [f["recording_id"] for f in res.failed] == ["kill-me.wav"] and "kill-me.wav" not in res.skipped
    assert len(res.done) == len(recordings) - 1 and res.exit_code == ExitCode.PARTIAL


class CountingStage(KillStage):
    """KillStage that logs every attempt (one file each) and, in a worker, holds `slow` recordings
    for 3 s, so the one in flight beside a killed worker is known."""

    def process(self, rec):
        import time

        log = self.out_root / "attempts"
        log.mkdir(parents=True, exist_ok=True)
        (log / f"{rec.recording_id}.{os.getpid()}.{time.time_ns()}").touch()
        if "slow" in rec.recording_id and os.getpid() != self.parent:
            time.sleep(3.0)
        return super().process(rec)


def test_a_recording_rerun_alone_has_nothing_beside_it(tmp_path):
    """b-slow is in flight when c-kill-me kills its worker; both run again, each alone. The bug
    this guards: once the `alone` queue was empty, the next new recording (d-slow, still running
    when the worker dies) was started beside the last one from it, so c-kill-me killed a
    neighbour again and ran a third time."""
    root = tmp_path / "audio"
    for name in ("a-fast", "b-slow", "c-kill-me", "d-slow", "e"):
        make_tone_wav(root / f"{name}.wav", 1.0)
    recs, _ = batch.discover(root)
    out = tmp_path / "out"
    res = LocalEngine(jobs=2).run_stage(recs, CountingStage(out), show_progress=False)
    assert [f["recording_id"] for f in res.failed] == ["c-kill-me.wav"]
    assert res.done == ["a-fast.wav", "b-slow.wav", "d-slow.wav", "e.wav"]
    attempts = {}
    for f in (out / "attempts").iterdir():
        rid = f.name.split(".wav.")[0] + ".wav"
        attempts[rid] = attempts.get(rid, 0) + 1
    assert attempts["c-kill-me.wav"] == 2, attempts  # beside b-slow, then alone: never a third time
    assert attempts["d-slow.wav"] == 1 and attempts["e.wav"] == 1, attempts  # never beside a rerun


class UnstartableStage(KillStage):
    """Pickles in the parent; unpickling it in a worker fails, as a broken initializer does."""

    def __setstate__(self, state):
        if os.getpid() != state["parent"]:
            raise RuntimeError("cannot start here")
        self.__dict__.update(state)


def test_workers_that_cannot_start_are_one_line_not_a_row_per_recording(recordings, tmp_path):
    from hilbert_cli.errors import ConfigError

    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"--jobs 2: the worker processes could not start") as info:
        LocalEngine(jobs=2).run_stage(recordings, UnstartableStage(out), show_progress=False)
    assert "\n" not in str(info.value)
    assert not (out / "errors").exists() and not (out / "len").exists()
