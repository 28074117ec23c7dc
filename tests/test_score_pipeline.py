"""`hilbert score` end to end on real (espeak-ng) speech with tiny local models.

Covers: the output contract, error rows for bad recordings, reuse of cached stage outputs,
SIGKILL at several points + resume == an uninterrupted run, shards that partition the input
and merge to the unsharded table, and one clear line for a missing / corrupt / incompatible
model directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from hilbert_cli.batch import Shard
from hilbert_cli.errors import ConfigError
from hilbert_cli.scoring.merge import merge_scores
from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings
from tests.fixtures_score import score_setup  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def _table(path):
    return pq.read_table(path).replace_schema_metadata(None)


def _opts(setup, work, **kw):
    return ScoreOptions(model_dir=setup.model_dir, work_dir=work, transcripts=setup.transcripts, device="cpu", **kw)


@pytest.fixture(scope="module")
def reference(score_setup, tmp_path_factory):
    """One uninterrupted, unsharded run (with embeddings): the table every other run must equal."""
    d = tmp_path_factory.mktemp("ref")
    run = score_recordings(score_setup.inputs, _opts(score_setup, d / "work", embeddings=True), d / "scores.parquet",
                           show_progress=False)
    return run, d


def test_scores_table_contract(score_setup, reference):
    run, d = reference
    assert run.exit_code == 1  # finished, with error rows
    assert len(run.result.done) == score_setup.n_good and len(run.result.failed) == len(score_setup.bad)
    df = pq.read_table(run.out_path).to_pandas()
    ok, err = df[df.status == "ok"], df[df.status == "error"]
    assert sorted(err.recording_id) == score_setup.bad
    assert err.task.isna().all() and err.error_message.str.len().gt(0).all()
    stage = dict(zip(err.recording_id, zip(err.error_stage, err.error_type)))
    assert stage["not_audio.wav"][0] == "prepare" and stage["empty.wav"][0] == "prepare"
    assert stage["truncated.wav"] in {("prepare", "InputError"), ("embed", "NoSpeech")}  # 10 samples: no speech
    assert len(ok) == score_setup.n_good and set(ok.task) == {"affect"}
    assert list(df.recording_id) == sorted(df.recording_id)
    for _, r in ok.iterrows():
        probs = np.asarray(r.probabilities)
        assert list(r.class_names) == ["negative", "neutral", "positive"]
        assert abs(probs.sum() - 1) < 1e-5 and r.label == r.class_names[int(np.argmax(probs))]
        assert [r[f"prob_{c}"] for c in r.class_names] == pytest.approx(list(probs))
        assert r.n_segments > 0 and 5 < r.duration_s < 60 and r.model_id.startswith("tiny@")
        assert len(r.z_j) == 64 and len(r.h_a) == 16 and np.isfinite(np.asarray(r.z_a)).all()
    meta = json.loads(pq.read_schema(run.out_path).metadata[b"hilbert"])
    assert meta["stage"] == "scores" and meta["n_recordings"] == score_setup.n_good + len(score_setup.bad)


def test_score_manifest_has_one_row_per_recording_matching_the_table(score_setup, reference):
    from hilbert_cli.manifest import read_manifest
    from hilbert_cli.scoring.pipeline import manifest_dir

    run, d = reference
    m = read_manifest(manifest_dir(run.out_path)).to_pylist()
    rows = {r["recording_id"]: r for r in m if r["status"] != "ignored"}
    scores = pq.read_table(run.out_path).to_pandas()
    assert sorted(rows) == sorted(set(scores.recording_id))  # every recording scored or failed, once
    ok = {r for r, x in rows.items() if x["status"] == "ok"}
    assert ok == set(scores[scores.status == "ok"].recording_id) and len(ok) == score_setup.n_good
    for rid in score_setup.bad:
        assert rows[rid]["status"] in {"error", "no_speech"} and rows[rid]["error_type"], rows[rid]
    for rid in ok:
        x = rows[rid]
        assert x["n_segments"] and x["n_segments"] > 0 and 5 < x["duration_s"] < 60 and x["config_hash"]
        assert x["error_type"] is None
    assert run.exit_code == 1  # the exit code the summary gives comes from the same rows


def test_rerun_reuses_everything(score_setup, reference):
    run, d = reference
    # every output except the failed recordings' (retried on each run) stays untouched
    mtimes = {p: p.stat().st_mtime_ns for p in (d / "work").rglob("*.parquet")
              if "errors" not in p.parts and not any(p.name.startswith(b) for b in score_setup.bad)}
    again = score_recordings(score_setup.inputs, _opts(score_setup, d / "work", embeddings=True),
                             d / "again.parquet", show_progress=False)
    assert len(again.result.skipped) == score_setup.n_good and not again.result.done
    assert len(again.result.failed) == len(score_setup.bad)  # failures are retried, and fail again
    assert _table(again.out_path).equals(_table(run.out_path))
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())  # nothing recomputed or rewritten


def test_cached_prepare_and_embed_outputs_are_reused(score_setup, reference, tmp_path):
    """A work dir that already holds prepare + embed outputs only runs the model."""
    run, d = reference
    work = tmp_path / "work"
    shutil.copytree(d / "work", work, ignore=shutil.ignore_patterns("score", "errors"))
    again = score_recordings(score_setup.inputs, _opts(score_setup, work, embeddings=True), tmp_path / "s.parquet",
                             show_progress=False)
    assert len(again.result.done) == score_setup.n_good
    assert set(again.timings) >= {"prepare", "embed", "model"}
    assert again.timings["prepare"] + again.timings["embed"] < 2.0  # read from disk, not recomputed
    assert _table(again.out_path).equals(_table(run.out_path))


def test_shards_partition_and_merge_to_the_unsharded_table(score_setup, reference, tmp_path):
    run, d = reference
    n = 3
    ids = []
    # stage outputs of the reference run are reused (a shared work dir); the scoring is redone per shard
    shutil.copytree(d / "work", tmp_path / "work", ignore=shutil.ignore_patterns("score", "errors"))
    for k in range(n):
        r = score_recordings(score_setup.inputs, _opts(score_setup, tmp_path / "work", embeddings=True),
                             tmp_path / "shards", shard=Shard(k, n), show_progress=False)
        assert r.out_path == tmp_path / "shards" / f"part-{k}-of-{n}.parquet"
        ids += list(set(pq.read_table(r.out_path).column("recording_id").to_pylist()))
    all_ids = sorted(set(pq.read_table(run.out_path).column("recording_id").to_pylist()))
    assert sorted(ids) == all_ids  # every recording in exactly one shard
    out, _ = merge_scores([tmp_path / "shards"], tmp_path / "merged.parquet", expect_shards=n)
    assert _table(out).equals(_table(run.out_path))


def _cli(*args):
    return [sys.executable, "-c", "from hilbert_cli.cli import main; main()", *map(str, args)]


def _score_cmd(setup, work, out):
    return _cli("score", setup.inputs, "--model", setup.model_dir, "--out", out, "--work", work,
                "--transcripts", setup.transcripts, "--embeddings", "--device", "cpu", "--quiet")


def _count(work: Path, sub: str) -> int:
    d = work / sub
    return sum(1 for p in d.rglob("*.parquet") if not p.name.startswith(".")) if d.is_dir() else 0


def _run_until(cmd, cond, timeout=240):
    """Start cmd; SIGKILL it as soon as cond() holds. Returns True if it was killed mid-run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    t0 = time.time()
    try:
        while proc.poll() is None and time.time() - t0 < timeout:
            if cond():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.02)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigkill_at_several_points_then_resume_equals_uninterrupted(score_setup, reference, tmp_path):
    run, d = reference
    work, out = tmp_path / "work", tmp_path / "scores.parquet"
    cmd = _score_cmd(score_setup, work, out)
    kills = [
        # after the first recording's prepare output: mid embed / model / the next recording
        lambda: _count(work, "prepare/words") >= 1,
        # a few recordings later: mid-batch, some scored, some prepared, some not started
        lambda: _count(work, "score") >= score_setup.n_good - 2,
    ]
    killed = sum(_run_until(cmd, cond) for cond in kills)
    assert killed == 2, "the run finished before it could be killed: the corpus is too small"
    assert not out.exists() and 0 < _count(work, "score") < score_setup.n_good + len(score_setup.bad)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr[-2000:]  # done, with error rows for the bad files
    assert _table(out).equals(_table(run.out_path))
    assert not [p for p in out.parent.glob("*.parquet") if p != out]


@pytest.mark.parametrize("breakage", ["missing", "corrupt_config", "incompatible", "corrupt_weights", "empty"])
def test_bad_model_dir_gives_one_clear_line(score_setup, tmp_path, breakage):
    model = tmp_path / "model"
    if breakage != "missing":
        shutil.copytree(score_setup.model_dir, model)
    cfg = model / "models" / "affect" / "config.json"
    if breakage == "corrupt_config":
        cfg.write_text(cfg.read_text()[:100])
    elif breakage == "incompatible":
        c = json.loads(cfg.read_text())
        c["format_version"] = 99
        cfg.write_text(json.dumps(c))
    elif breakage == "corrupt_weights":
        w = model / "models" / "affect" / "model.safetensors"
        w.write_bytes(w.read_bytes()[:200])
    elif breakage == "empty":
        shutil.rmtree(model / "models")
    with pytest.raises(ConfigError) as e:
        score_recordings(score_setup.inputs, ScoreOptions(model_dir=model, work_dir=tmp_path / "w"),
                         tmp_path / "s.parquet", show_progress=False)
    msg = str(e.value)
    assert "\n" not in msg and str(model) in msg
    assert not (tmp_path / "s.parquet").exists() and not (tmp_path / "w").exists()


def test_cli_bad_model_exit_code_and_one_line(score_setup, tmp_path):
    proc = subprocess.run(_cli("score", score_setup.inputs, "--model", tmp_path / "nope", "--out", tmp_path / "s.parquet"),
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "nope" in lines[0] and "error" in lines[0]


@pytest.mark.timeout(600)
def test_ray_chain_prepares_on_its_own_pool_and_scores_as_the_local_engine(score_setup, reference, tmp_path):
    """--engine ray runs score as two stages (ScorePrepare, then ScoreWorker): the same table,
    the same error rows (a recording that cannot be prepared is reported by the score stage,
    error_stage prepare), and --jobs 2 on the local engine the same again."""
    ray = pytest.importorskip("ray")
    from hilbert_cli.engines.ray_cluster import init_local

    run, d = reference
    ref = _table(run.out_path).to_pandas().set_index("recording_id")
    if ray.is_initialized():
        ray.shutdown()
    init_local(num_cpus=2, object_store_memory=200 * 1024**2)
    try:
        ray_run = score_recordings(score_setup.inputs, _opts(score_setup, tmp_path / "work", embeddings=True),
                                   tmp_path / "scores.parquet", show_progress=False, engine="ray",
                                   engine_options={"concurrency": 1})
    finally:
        ray.shutdown()
    jobs_run = score_recordings(score_setup.inputs, _opts(score_setup, tmp_path / "work2", embeddings=True),
                                tmp_path / "scores2.parquet", show_progress=False, jobs=2)
    for other in (ray_run, jobs_run):
        assert other.result.done == run.result.done and other.result.failed and \
            [f["recording_id"] for f in other.result.failed] == [f["recording_id"] for f in run.result.failed]
        df = _table(other.out_path).to_pandas().set_index("recording_id")
        assert list(df.index) == list(ref.index)
        for col in ("status", "label", "error_stage", "error_type"):
            assert df[col].tolist() == ref[col].tolist(), col
        ok = df.status == "ok"
        assert np.allclose(np.stack(df[ok].probabilities), np.stack(ref[ok].probabilities), atol=1e-5)
    assert not (tmp_path / "work" / "errors" / "score-prepare").exists()  # the prepare stage never fails a recording
    assert (tmp_path / "work" / "errors" / "score").is_dir()


def test_another_folders_recording_of_the_same_name_is_scored_anew(score_setup, reference, tmp_path):
    """A shared --work keyed by recording id must not hand one folder's scores (or features)
    to another folder's file of the same relative name: that file is scored as in a fresh work dir."""
    run, d = reference
    goods = sorted(p for p in score_setup.inputs.rglob("*.wav") if p.name not in score_setup.bad)
    assert len(goods) >= 2
    other = tmp_path / "other"
    for i, p in enumerate(goods):  # each name now holds the next recording's audio
        dst = other / p.relative_to(score_setup.inputs)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(goods[(i + 1) % len(goods)], dst)
    work = tmp_path / "work"
    shutil.copytree(d / "work", work)  # holds the first folder's prepare, embed and score parts
    shared = score_recordings(other, _opts(score_setup, work, embeddings=True), tmp_path / "shared.parquet",
                              show_progress=False)
    fresh = score_recordings(other, _opts(score_setup, tmp_path / "fresh", embeddings=True), tmp_path / "fresh.parquet",
                             show_progress=False)
    assert len(shared.result.done) == len(goods)  # none taken from the first folder's parts
    ours = _table(shared.out_path)
    assert ours.equals(_table(fresh.out_path))
    # and the audio really changed under each name: the first folder's vectors were not reused
    def vectors(table):
        return {r["recording_id"]: r["h_a"] for r in table.select(["recording_id", "task", "h_a"]).to_pylist()
                if r["task"] is not None}

    before, after = vectors(_table(run.out_path)), vectors(ours)
    assert after and all(after[rid] != before[rid] for rid in after)
