#!/usr/bin/env python
"""Throughput of the Ray engine (1 and 2 local workers) beside the local engine, same corpus.

    .venv/bin/python benchmarks/bench_ray.py                      # real prepare stage, built-in models
    .venv/bin/python benchmarks/bench_ray.py --stage rms          # a cheap decode-only stage
    .venv/bin/python benchmarks/bench_ray.py --recordings 12 --seconds 20 --workers 1 2

The corpus is built once (espeak-ng two-voice interviews, or tones without espeak-ng); each
engine then runs the same stage into its own fresh output directory, and the outputs are
checked to be identical ("local-1t" is the local engine with one thread, as a Ray actor
with num_cpus=1 has: model numerics change with the thread count). The local Ray cluster
(loopback, --cluster-cpus CPUs) is started once; its start-up time is printed apart from the
runs, whose wall time includes starting the actors and loading models in them (what a user
waits for).

Stages:
  prepare  the real `hilbert prepare` stage (hilbert_cli.prepare) with the built-in offline
           models (silero VAD + CAM++ + nap-kmeans clustering, Whisper tiny.en int8) on CPU;
           --sidecars gives every recording an .srt transcript instead (no ASR);
  rms      streamed decoding (hilbert_cli.audio) + one Parquet of RMS per 0.5 s chunk: almost
           no compute, so it measures the engine's own overhead per recording.

On a 2-core machine expect little or no gain from 2 workers; the point is that outputs are
identical and the overhead is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # fixtures_prepare: espeak-ng interviews

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from hilbert_cli import batch  # noqa: E402
from hilbert_cli.engines.runner import run_batch  # noqa: E402
from hilbert_cli.parquet_io import read_table, write_table_atomic  # noqa: E402

RMS_HASH = "bench-rms-v1"


# ----------------------------------------------------------------------------- stages
# (defined in __main__: cloudpickle ships them to the Ray workers by value)


class RmsStage:
    def __init__(self, out_root: str):
        self.out_root = Path(out_root)

    def __call__(self, rec: batch.Recording) -> float:
        from hilbert_cli.audio import SAMPLE_RATE, stream_chunks

        rms, n = [], 0
        for chunk in stream_chunks(rec.path, chunk_s=0.5):
            rms.append(float(np.sqrt(np.mean(np.square(chunk.samples, dtype=np.float64)))))
            n = chunk.start_sample + chunk.samples.size
        table = pa.table({"chunk_index": pa.array(range(len(rms)), pa.int32()), "rms": pa.array(rms, pa.float32())})
        path = batch.output_path(self.out_root, "rms", rec.recording_id)
        write_table_atomic(table, path, {"stage": "rms", "config_hash": RMS_HASH})
        return n / SAMPLE_RATE


def rms_done(out_root: str, rec: batch.Recording) -> bool:
    return batch.is_complete(batch.output_path(Path(out_root), "rms", rec.recording_id), RMS_HASH)


class PreparerStage:
    """The real prepare stage through its public API (CONTRACTS.md: Preparer.process + write)."""

    def __init__(self, options_json: str, work_dir: str):
        from hilbert_cli.prepare import PrepareOptions, Preparer

        self.preparer = Preparer(PrepareOptions.model_validate_json(options_json))
        self.work_dir = Path(work_dir)

    def __call__(self, rec: batch.Recording) -> float:
        prepared = self.preparer.process(rec)
        self.preparer.write(prepared, self.work_dir)
        return prepared.duration_s


def rms_stage(out: Path, _options: dict):
    return "rms", functools.partial(RmsStage, str(out)), functools.partial(rms_done, str(out)), ["rms"]


def prepare_stage(out: Path, options: dict):
    from hilbert_cli.prepare import PrepareOptions
    from hilbert_cli.prepare import stage as pp

    opts = PrepareOptions(**options)
    is_done = functools.partial(pp.is_done, work_dir=out, chash=pp.config_hash(opts))
    return "prepare", functools.partial(PreparerStage, opts.model_dump_json(), str(out)), is_done, ["prepare"]


STAGES = {"rms": rms_stage, "prepare": prepare_stage}


# ----------------------------------------------------------------------------- corpus


def _srt(turns) -> str:
    def clock(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i + 1}\n{clock(s)} --> {clock(e)}\n{text}\n" for i, (_, s, e, text) in enumerate(turns))


def build_corpus(root: Path, n: int, seconds: float, sidecars: bool) -> list[batch.Recording]:
    import fixtures_prepare as fx

    audio = root / "audio"
    pool = fx.INTERVIEW_TURNS
    for i in range(n):
        path = audio / f"rec{i:03d}.wav"
        if fx.have_tool("espeak-ng") and fx.have_tool("sox"):
            turns, total, k = [], 0.0, i
            while total < seconds:
                turns.append(pool[k % len(pool)])
                total += 4.0  # about one espeak-ng turn plus the gap
                k += 1
            _, ref = fx.two_speaker_interview(path, turns)
            if sidecars:
                path.with_suffix(".srt").write_text(_srt(ref))
        else:
            fx.make_tone_wav(path, seconds, freq=200.0 + 20 * i)
    recs, _ = batch.discover(audio)
    return recs


# ----------------------------------------------------------------------------- runs


@contextlib.contextmanager
def _threads(n: int | None):
    """Run with n threads in torch and in the BLAS/OpenMP pools (as OMP_NUM_THREADS=n would)."""
    if not n:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(saved)


def run_one(label: str, recs, stage_fn, options: dict, root: Path, engine: str, threads: int | None = None,
            **engine_options) -> dict:
    out = root / f"out-{label}"
    shutil.rmtree(out, ignore_errors=True)
    name, make_process, is_done, subdirs = stage_fn(out, options)
    if engine == "ray":
        engine_options.setdefault("show_progress", False)
    with _threads(threads):
        t0 = time.perf_counter()
        res = run_batch(recs, stage=name, out_root=out, make_process=make_process, is_done=is_done,
                        show_progress=False, engine=engine, engine_options=engine_options)
    wall = time.perf_counter() - t0
    print(f"{label}: {wall:.1f} s ({res.summary()})", flush=True)
    return {"label": label, "wall": wall, "res": res, "out": out, "subdirs": subdirs}


def _tables(out: Path, subdirs: list[str]) -> dict:
    """Each output file: its table and its metadata minus the run's own wall-clock timings."""
    import json

    found = {}
    for sub in subdirs:
        for p in sorted((out / sub).rglob("*.parquet")):
            t = read_table(p)
            meta = json.loads((t.schema.metadata or {}).get(b"hilbert", b"{}"))
            meta.pop("timings_s", None)
            found[p.relative_to(out).as_posix()] = (t.replace_schema_metadata(None), meta)
    return found


def _same(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(a[k][0].equals(b[k][0]) and a[k][1] == b[k][1] for k in a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=sorted(STAGES), default="prepare")
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="approximate length of each recording")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor pool sizes to run")
    ap.add_argument("--cluster-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--sidecars", action="store_true", help="prepare: .srt transcripts beside the audio (no ASR)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the corpus and outputs here")
    args = ap.parse_args(argv)

    from hilbert_cli.engines.ray_cluster import import_ray, init_local

    ray = import_ray()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"corpus: {args.recordings} recordings of ~{args.seconds:g} s under {root}", flush=True)
    t = time.perf_counter()
    recs = build_corpus(root, args.recordings, args.seconds, args.sidecars)
    print(f"  built in {time.perf_counter() - t:.1f} s", flush=True)
    stage_fn = STAGES[args.stage]
    # built-in default models (vad-cluster + whisper-tiny.en) on CPU. A Ray actor with num_cpus=1
    # runs with OMP_NUM_THREADS=1, so "local-1t" (one thread) is the reference its outputs must equal.
    opts = {"device": "cpu"} if args.stage == "prepare" else {}
    opts_1t = {**opts, "cpu_threads": 1} if args.stage == "prepare" else {}

    runs = [run_one("local", recs, stage_fn, opts, root, "local"),
            run_one("local-1t", recs, stage_fn, opts_1t, root, "local", threads=1)]

    t = time.perf_counter()
    init_local(num_cpus=args.cluster_cpus)
    startup = time.perf_counter() - t
    print(f"ray cluster start ({args.cluster_cpus} CPUs, loopback): {startup:.1f} s", flush=True)
    try:
        # the first Ray run of a fresh cluster also pays cold worker start-up (imports from a
        # cold cache); one recording first, so the runs below compare like with like
        warm = run_one("ray-warmup", recs[:1], stage_fn, opts_1t, root, "ray", concurrency=1)
        for k in args.workers:
            runs.append(run_one(f"ray-{k}", recs, stage_fn, opts_1t, root, "ray", concurrency=k))
    finally:
        ray.shutdown()

    ref = _tables(runs[1]["out"], runs[1]["subdirs"])
    all_same = True
    print()
    print(f"stage {args.stage}{' (sidecar transcripts)' if args.sidecars else ''}: {len(recs)} recordings, "
          f"{runs[0]['res'].audio_s:.0f} s audio; machine: {os.cpu_count()} cores; "
          f"Ray cluster start-up {startup:.1f} s and a 1-recording warm-up run {warm['wall']:.1f} s "
          "(not in the walls below)")
    print(f"{'engine':<10}{'wall s':>8}{'rec/s':>8}{'x RT':>7}{'vs local':>10}{'done':>6}{'failed':>7}  outputs vs local-1t")
    for r in runs:
        res = r["res"]
        same = _same(_tables(r["out"], r["subdirs"]), ref)
        if r["label"] != "local":
            all_same &= same
        rt = res.audio_s / r["wall"] if r["wall"] > 0 else 0.0
        note = "identical" if same else (
            "differ (the thread count changes model numerics)" if r["label"] == "local" else "DIFFERENT")
        print(f"{r['label']:<10}{r['wall']:>8.1f}{len(recs) / r['wall']:>8.2f}{rt:>7.1f}"
              f"{runs[0]['wall'] / r['wall']:>9.2f}x{len(res.done):>6}{len(res.failed):>7}  {note}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
