#!/usr/bin/env python
"""Throughput of the Ray engine (1 and 2 local workers) beside the local engine, same corpus.

    .venv/bin/python benchmarks/bench_ray.py                      # real prepare stage, tiny models
    .venv/bin/python benchmarks/bench_ray.py --stage rms          # a cheap decode-only stage
    .venv/bin/python benchmarks/bench_ray.py --recordings 12 --seconds 20 --workers 1 2

The corpus is built once (espeak-ng two-voice interviews, or tones without espeak-ng); each
engine then runs the same stage into its own fresh output directory, and the outputs are
checked to be identical across engines. The local Ray cluster (loopback, --cluster-cpus
CPUs) is started once; its start-up time is printed separately from the runs, whose wall
time includes starting the actors and loading models in them (what a user waits for).

Stages:
  prepare  the real `hilbert prepare` stage (hilbert_cli.prepare) with tiny local models built
           by tests/fixtures_prepare (random tiny Whisper CT2 + tiny pyannote pipeline);
  rms      streamed decoding (hilbert_cli.audio) + one Parquet of RMS per 0.5 s chunk: almost
           no compute, so it measures the engine's own overhead per recording.

On a 2-core machine expect little or no gain from 2 workers; the point is that outputs are
identical and the overhead is measured.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # fixtures_prepare: corpus + tiny models

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from hilbert_cli import batch  # noqa: E402
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


def rms_stage(out: Path, _models: dict):
    return "rms", functools.partial(RmsStage, str(out)), functools.partial(rms_done, str(out)), ["rms"]


def prepare_stage(out: Path, models: dict):
    """The real prepare stage through its public batch API pieces (make_process + is_done)."""
    from hilbert_cli.prepare import pipeline as pp
    from hilbert_cli.prepare.options import PrepareOptions

    options = PrepareOptions.model_validate(models["prepare_options"])
    make_process, is_done = pp.batch_callables(options, out)
    return "prepare", make_process, is_done, ["prepare"]


STAGES = {"rms": rms_stage, "prepare": prepare_stage}


# ----------------------------------------------------------------------------- corpus + models


def build_corpus(root: Path, n: int, seconds: float) -> list[batch.Recording]:
    import fixtures_prepare as fx

    audio = root / "audio"
    turns_pool = fx.INTERVIEW_TURNS
    for i in range(n):
        path = audio / f"rec{i:03d}.wav"
        if fx.have_tool("espeak-ng") and fx.have_tool("sox"):
            turns, total = [], 0.0
            k = i
            while total < seconds:
                spk, text = turns_pool[k % len(turns_pool)]
                turns.append((spk, text))
                total += 3.2  # about one espeak-ng sentence
                k += 1
            fx.two_speaker_interview(path, turns)
        else:
            fx.make_tone_wav(path, seconds, freq=200.0 + 20 * i)
    recs, _ = batch.discover(audio)
    return recs


def build_models(root: Path, stage: str) -> dict:
    if stage != "prepare":
        return {}
    import fixtures_prepare as fx

    whisper = fx.build_tiny_whisper_ct2(root / "tiny-whisper")
    pyannote = fx.build_tiny_pyannote_pipeline(root / "tiny-pyannote")
    return {"prepare_options": {"asr": str(whisper), "diarization": str(pyannote), "device": "cpu"}}


# ----------------------------------------------------------------------------- runs


def _tables(out: Path, subdirs: list[str]) -> dict[str, pa.Table]:
    found = {}
    for sub in subdirs:
        for p in sorted((out / sub).rglob("*.parquet")):
            t = read_table(p)
            found[p.relative_to(out).as_posix()] = t.replace_schema_metadata(None)
    return found


def run_one(label: str, recs, stage_fn, models: dict, root: Path, engine: str, **engine_options) -> dict:
    out = root / f"out-{label}"
    shutil.rmtree(out, ignore_errors=True)
    name, make_process, is_done, subdirs = stage_fn(out, models)
    if engine == "ray":
        engine_options.setdefault("show_progress", False)
    t0 = time.perf_counter()
    res = batch.run_batch(recs, stage=name, out_root=out, make_process=make_process, is_done=is_done,
                          show_progress=False, engine=engine, engine_options=engine_options)
    wall = time.perf_counter() - t0
    return {"label": label, "wall": wall, "res": res, "out": out, "subdirs": subdirs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=sorted(STAGES), default="prepare")
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="approximate length of each recording")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor pool sizes to run")
    ap.add_argument("--cluster-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--keep", type=Path, default=None, help="keep the corpus and outputs here")
    args = ap.parse_args(argv)

    from hilbert_cli.engines.ray_engine import import_ray, init_local

    ray = import_ray()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"corpus: {args.recordings} recordings of ~{args.seconds:g} s under {root}", flush=True)
    t = time.perf_counter()
    recs = build_corpus(root, args.recordings, args.seconds)
    models = build_models(root, args.stage)
    print(f"  built in {time.perf_counter() - t:.1f} s", flush=True)
    stage_fn = STAGES[args.stage]

    runs = [run_one("local", recs, stage_fn, models, root, "local")]
    print(f"local: {runs[-1]['wall']:.1f} s", flush=True)

    t = time.perf_counter()
    init_local(num_cpus=args.cluster_cpus)
    startup = time.perf_counter() - t
    print(f"ray cluster start ({args.cluster_cpus} CPUs, loopback): {startup:.1f} s", flush=True)
    try:
        for k in args.workers:
            runs.append(run_one(f"ray-{k}", recs, stage_fn, models, root, "ray", concurrency=k))
            print(f"ray, {k} worker(s): {runs[-1]['wall']:.1f} s", flush=True)
    finally:
        ray.shutdown()

    base = _tables(runs[0]["out"], runs[0]["subdirs"])
    all_same = True
    print()
    print(f"stage {args.stage}: {len(recs)} recordings, {runs[0]['res'].audio_s:.0f} s audio "
          f"(machine: {os.cpu_count()} cores; Ray cluster start-up {startup:.1f} s not included below)")
    print(f"{'engine':<12}{'wall s':>9}{'rec/s':>9}{'x RT':>8}{'vs local':>10}{'done':>6}{'failed':>8}  outputs")
    for r in runs:
        res = r["res"]
        same = _tables(r["out"], r["subdirs"]) == base
        all_same &= same
        rt = res.audio_s / r["wall"] if r["wall"] > 0 else 0.0
        print(f"{r['label']:<12}{r['wall']:>9.1f}{len(recs) / r['wall']:>9.2f}{rt:>8.1f}"
              f"{runs[0]['wall'] / r['wall']:>9.2f}x{len(res.done):>6}{len(res.failed):>8}  "
              f"{'identical' if same else 'DIFFERENT'}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
