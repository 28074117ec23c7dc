"""`hilbert score` with several workers: each worker's ASR and torch run on its share of the
cores (N workers never ask for N x the cores), and the per-step timings come back from the
workers, so the timing summary is the same whatever the engine.

Real scoring of the tiny espeak-ng corpus (tests/fixtures_score.py) in real worker processes:
spawned `--jobs` workers, and the Ray engine's actor class built in a spawned process (what a
Ray worker process does with it), without a Ray cluster.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from hilbert_cli.parquet_io import read_metadata
from hilbert_cli.scoring.pipeline import ScoreOptions, ScoreWorker, score_recordings
from tests.fixtures_score import score_setup  # noqa: F401

pytestmark = pytest.mark.timeout(600)

STEPS = {"prepare", "embed", "model"}


def _opts(setup, work) -> ScoreOptions:
    return ScoreOptions(model_dir=setup.model_dir, work_dir=work, transcripts=setup.transcripts, device="cpu")


def _asr_workers_recorded(work: Path) -> set:
    """The ASR workers each prepared recording ran with (its words table records its options)."""
    return {read_metadata(p)["options"]["asr"]["workers"] for p in (work / "prepare" / "words").rglob("*.parquet")}


def test_a_score_worker_takes_its_thread_share(score_setup, monkeypatch, tmp_path):  # noqa: F811
    """Two jobs on a machine reporting 2 cores: one ASR window (one CTranslate2 thread) each."""
    import hilbert_cli.engines.local as local
    from hilbert_cli.prepare import asr

    monkeypatch.setattr(local, "usable_cores", lambda: 2)
    monkeypatch.setattr(asr, "usable_cores", lambda: 2)
    threads = local.threads_per_job(2)
    worker = ScoreWorker(_opts(score_setup, tmp_path / "work"))
    shipped = pickle.loads(pickle.dumps(worker))  # as a worker process receives it
    assert asr.cpu_workers(shipped.stages.prepare_stage.options.asr) == 2  # untouched: every core
    budgeted = pickle.loads(pickle.dumps(worker)).with_threads(threads)
    prep = budgeted.stages.prepare_stage
    assert threads == 1 and prep.options.asr.workers == 1 and asr.cpu_workers(prep.options.asr) == 1
    assert prep.config_hash == shipped.stages.prepare_stage.config_hash  # a runtime setting
    shipped.with_threads(threads)  # also after its stages were built
    assert shipped.stages.prepare_stage.options.asr.workers == 1


def test_two_jobs_share_the_cores_and_report_the_timings(score_setup, monkeypatch, tmp_path):  # noqa: F811
    """Two jobs on a machine reporting 4 cores: each worker prepares with 2 ASR workers (not 4), and
    the timings of both workers reach the result, as one job's do."""
    import hilbert_cli.engines.local as local

    monkeypatch.setattr(local, "usable_cores", lambda: 4)
    one = score_recordings(score_setup.inputs, _opts(score_setup, tmp_path / "w1"), tmp_path / "one.parquet",
                           show_progress=False)
    two = score_recordings(score_setup.inputs, _opts(score_setup, tmp_path / "w2"), tmp_path / "two.parquet",
                           show_progress=False, jobs=2)
    assert two.result.done == one.result.done and len(two.result.done) == score_setup.n_good
    assert _asr_workers_recorded(tmp_path / "w2") == {2}
    assert set(one.timings) == set(two.timings) == STEPS
    assert all(v > 0 for v in two.timings.values())


def test_cli_prints_the_stage_timings_with_jobs(score_setup, tmp_path, capfd):  # noqa: F811
    from fixtures_prepare import run_main

    code = run_main(["score", score_setup.inputs, "--model", score_setup.model_dir, "--out", tmp_path / "s.parquet",
                     "--work", tmp_path / "w", "--transcripts", score_setup.transcripts, "--device", "cpu",
                     "--jobs", "2"])
    assert code == 1  # the bad recordings failed
    out = capfd.readouterr().out  # the summary is the result: stdout
    line = next((line for line in out.splitlines() if "x real time per stage" in line), "")
    assert all(f"{step} " in line for step in STEPS), out


def _ray_actor_in_a_worker_process(spec_blob: bytes, rid: str, path: str) -> tuple:
    """What a Ray worker process does with the score stage: build StageActor, hand it a block."""
    import torch

    from hilbert_cli.engines.ray_actor import StageActor, _timings_column

    spec = pickle.loads(spec_blob)
    actor = StageActor(spec, 0, False, 0, os.getcwd(), "run")
    block = actor(pa.table({"recording_id": [rid], "path": [os.fsencode(path)]}))
    workers = actor.process.stages.prepare_stage.options.asr.workers
    return workers, torch.get_num_threads(), block.column("s0_status")[0].as_py(), block.column(_timings_column(0))[0].as_py()


def test_a_ray_actor_takes_its_num_cpus_and_reports_the_timings(score_setup, tmp_path):  # noqa: F811
    from hilbert_cli.batch import discover
    from hilbert_cli.engines.ray import _outcome
    from hilbert_cli.engines.ray_actor import StageSpec

    worker = ScoreWorker(_opts(score_setup, tmp_path / "work"))
    spec = StageSpec(worker.name, worker.factory(), worker.is_done, worker.out_root, num_cpus=2)
    rec = next(r for r in discover(score_setup.inputs)[0] if r.path.name not in score_setup.bad)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        workers, torch_threads, status, steps = pool.apply(
            _ray_actor_in_a_worker_process, (pickle.dumps(spec), rec.recording_id, str(rec.path)))
    assert (workers, torch_threads, status) == (2, 2, "done")
    row = {"s0_status": status, "s0_audio_s": 1.0, "s0_seconds": 1.0, "s0_error": None, "s0_timings": steps}
    timings = _outcome(row, 0).timings
    assert set(json.loads(steps)) == STEPS and timings == json.loads(steps) and all(v > 0 for v in timings.values())
