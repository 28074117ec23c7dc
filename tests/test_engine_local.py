"""The local engine (engines/local.py) through the Stage interface (hilbert_cli/stages.py):
one job and `--jobs 2` write the same outputs, error rows and manifest; each worker process
gets its share of the cores; a chain of stages blocks a failed recording's later stages.

The stages here are real (streamed decoding with hilbert_cli.audio, Parquet written
atomically, config-hash resume) and live at module level: worker processes unpickle them.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hilbert_cli import batch
from hilbert_cli.engines.local import LocalEngine, threads_per_job
from hilbert_cli.engines.runner import get_engine
from hilbert_cli.errors import ConfigError
from hilbert_cli.parquet_io import read_metadata, read_table, write_table_atomic
from hilbert_cli.stages import Stage, lazy
from fixtures_prepare import synth_speech

pytestmark = pytest.mark.timeout(300)


class RmsStage(Stage):
    """RMS per 0.5 s chunk of each recording -> <out>/rms/<id>.parquet."""

    name = "rms"
    config_hash = "rms-v1"

    def __init__(self, out_root: Path, meet: Path | None = None) -> None:
        self.out_root = Path(out_root)
        self.threads = 0
        self.meet = meet  # a folder where workers wait for each other (see _meet)

    @lazy
    def window(self) -> int:  # stands in for a model: built once per worker, never pickled
        return 8000

    def outputs(self, rec):
        return {"rms": batch.output_path(self.out_root, "rms", rec.recording_id)}

    def _meet(self, n: int = 2, timeout_s: float = 120.0) -> None:
        """Wait until n worker processes have each started a recording, so "two jobs did the
        work" does not depend on how fast a spawned worker starts on a loaded machine."""
        import time

        (self.meet / str(os.getpid())).touch()
        t0 = time.monotonic()
        while len(list(self.meet.iterdir())) < n and time.monotonic() - t0 < timeout_s:
            time.sleep(0.05)

    def process(self, rec):
        from hilbert_cli.audio import SAMPLE_RATE, stream_chunks

        if self.meet is not None:
            self._meet()
        rms, n = [], 0
        for chunk in stream_chunks(rec.path, chunk_s=self.window / SAMPLE_RATE):
            rms.append(float(np.sqrt(np.mean(np.square(chunk.samples, dtype=np.float64)))))
            n += chunk.samples.size
        return rms, n / SAMPLE_RATE

    def write(self, rec, result):
        rms, seconds = result
        table = pa.table({"chunk_index": pa.array(range(len(rms)), pa.int32()), "rms": pa.array(rms, pa.float32())})
        meta = {"config_hash": self.config_hash, "recording_id": rec.recording_id, "duration_s": seconds,
                "threads": self.threads, "pid": os.getpid()}
        write_table_atomic(table, list(self.outputs(rec).values())[-1], meta)
        return seconds

    def describe(self, rec):
        path = list(self.outputs(rec).values())[-1]
        return {"duration_s": read_metadata(path)["duration_s"]} if path.is_file() else {}

    def with_threads(self, threads: int) -> "RmsStage":
        import torch

        self.threads = threads if torch.get_num_threads() == threads else -1  # the worker's torch obeys it
        return self


class PeakStage(RmsStage):
    """A second stage chained after RmsStage: reads its output, fails on a marked recording."""

    name = "peak"

    def outputs(self, rec):
        return {"peak": batch.output_path(self.out_root, "peak", rec.recording_id)}

    def process(self, rec):
        if "fails-in-peak" in rec.recording_id:
            raise ValueError("this recording fails in the second stage")
        rms = read_table(batch.output_path(self.out_root, "rms", rec.recording_id)).column("rms").to_pylist()
        return [max(rms or [0.0])], 0.0


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[batch.Recording]:
    root = tmp_path_factory.mktemp("audio")
    for i, text in enumerate(["one two three", "hello there", "a longer sentence for the third file",
                              "four five", "fails-in-peak here"]):
        name = "fails-in-peak.wav" if i == 4 else f"r{i}.wav"
        synth_speech(text, root / name)
    (root / "broken.wav").write_bytes(b"RIFF not really a wav file")
    recs, _ = batch.discover(root)
    return recs


def _outputs(out: Path, sub: str) -> dict[str, list]:
    return {p.relative_to(out / sub).as_posix(): read_table(p).to_pylist() for p in sorted((out / sub).rglob("*.parquet"))}


def _rows(res) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in res.rows]


def test_two_jobs_write_what_one_job_writes(recordings, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = LocalEngine(jobs=1).run_stage(recordings, RmsStage(one), show_progress=False)
    meet = tmp_path / "meet"
    meet.mkdir()
    r2 = LocalEngine(jobs=2).run_stage(recordings, RmsStage(two, meet), show_progress=False)
    assert r1.done == r2.done == [r.recording_id for r in recordings if r.recording_id != "broken.wav"]
    assert [f["recording_id"] for f in r2.failed] == ["broken.wav"]
    assert _outputs(one, "rms") == _outputs(two, "rms") and len(_outputs(one, "rms")) == 5
    assert _outputs(one, "errors")["rms/broken.wav.parquet"][0]["message"] == \
        _outputs(two, "errors")["rms/broken.wav.parquet"][0]["message"]
    assert _rows(r1) == _rows(r2)
    assert abs(r1.audio_s - r2.audio_s) < 1e-9 and r2.audio_s > 0
    workers = {int(p.name) for p in meet.iterdir()}  # every process that took a recording
    assert len(workers) == 2 and os.getpid() not in workers  # two worker processes did the work
    assert {read_metadata(p)["pid"] for p in (two / "rms").rglob("*.parquet")} <= workers
    # each on its share of the cores (torch in the worker obeys it)
    assert {read_metadata(p)["threads"] for p in (two / "rms").rglob("*.parquet")} == {threads_per_job(2)}
    # resume: nothing is redone with two jobs either
    again = LocalEngine(jobs=2).run_stage(recordings, RmsStage(two), show_progress=False)
    assert again.done == [] and len(again.skipped) == 5 and [f["recording_id"] for f in again.failed] == ["broken.wav"]


def test_thread_budgets():
    assert threads_per_job(2) == max(1, len(os.sched_getaffinity(0)) // 2)
    assert threads_per_job(3, cores=8) == 2 and threads_per_job(4, cores=2) == 1 and threads_per_job(1, cores=6) == 6


def test_a_chain_blocks_the_later_stages_of_a_failed_recording(recordings, tmp_path):
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        rms, peak = LocalEngine(jobs=jobs).run(recordings, [RmsStage(out), PeakStage(out)], show_progress=False)
        assert [f["recording_id"] for f in rms.failed] == ["broken.wav"]
        assert [f["recording_id"] for f in peak.failed] == ["fails-in-peak.wav"]
        assert "broken.wav" not in peak.done + peak.skipped  # blocked: never handed to peak
        assert {r["recording_id"]: r["error_type"] for r in peak.rows}["broken.wav"] == "NotProcessed"
        assert sorted(_outputs(out, "peak")) == [f"r{i}.wav.parquet" for i in range(4)]


def test_stages_pickle_without_their_models(tmp_path):
    stage = RmsStage(tmp_path)
    assert stage.window == 8000 and stage.loaded("window") == 8000
    copy = pickle.loads(pickle.dumps(stage))
    assert copy.loaded("window") is None and copy.window == 8000  # rebuilt on first use


def test_engines_are_chosen_by_object_and_bad_settings_are_one_line(tmp_path):
    eng = LocalEngine(jobs=3)
    assert get_engine(eng) is eng
    assert isinstance(get_engine("local", jobs=2), LocalEngine) and get_engine("LOCAL", jobs=2).jobs == 2
    for bad in (lambda: get_engine("spark"), lambda: LocalEngine(jobs=0), lambda: get_engine("ray", jobs=2)):
        with pytest.raises(ConfigError) as info:
            bad()
        assert "\n" not in str(info.value)


def test_a_stage_that_cannot_be_sent_to_workers_is_one_line(recordings, tmp_path):
    from hilbert_cli.engines.runner import run_batch

    with pytest.raises(ConfigError, match="--jobs 1"):
        run_batch(recordings[:2], stage="x", out_root=tmp_path, process=lambda rec: 0.0, is_done=lambda rec: False,
                  show_progress=False, jobs=2)
    assert not (tmp_path / "errors").exists()  # refused before any recording was touched
