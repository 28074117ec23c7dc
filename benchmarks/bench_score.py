"""End-to-end `hilbert score` benchmark: peak RSS and x real time per stage vs recording length.

    .venv/bin/hilbert demo                      # once: builds demo_out/ with a trained model
    .venv/bin/python benchmarks/bench_score.py --minutes 10 120 [--demo demo_out] [--model demo_out/demo]

Each length gets a recording made by concatenating the demo corpus's interviews (two
speakers, real speech) up to that many minutes, written in blocks (never held whole), and is
scored with the built-in default pipeline (vad-cluster diarization, whisper-tiny.en ASR,
emotion-shift segmentation, spec + allMiniLM6 features, the demo model) in a fresh process,
so each peak RSS is that run's alone. Prints peak RSS per length, their ratio (last / first;
target <= 1.25: memory must not grow with recording length) and x real time per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_long_recording(corpus_train: Path, minutes: float, path: Path) -> float:
    """Concatenate the corpus's wavs (cycling) into `path` up to `minutes`; returns seconds written."""
    import soundfile as sf

    files = sorted(corpus_train.rglob("*.wav"))
    if not files:
        raise SystemExit(f"no wav files under {corpus_train}: run `hilbert demo` first")
    target = int(minutes * 60 * 16000)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as out:
        i = 0
        while written < target:
            data, sr = sf.read(files[i % len(files)], dtype="float32")
            assert sr == 16000
            data = data[: target - written]
            out.write(data)
            written += len(data)
            i += 1
    return written / 16000


def child(args) -> None:
    """Score one recording in this process; print one JSON line with peak RSS and timings."""
    from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings

    opts = ScoreOptions(model_dir=Path(args.model), work_dir=Path(args.work), device=args.device)
    t0 = time.perf_counter()
    run = score_recordings(Path(args.recording), opts, Path(args.work) / "scores.parquet", show_progress=False)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "peak_rss_mb": peak_kb / 1024, "wall_s": wall, "audio_s": run.result.audio_s,
        "failed": [f["message"] for f in run.result.failed], "timings": run.timings,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 120])
    ap.add_argument("--demo", type=Path, default=Path("demo_out"), help="output directory of `hilbert demo`")
    ap.add_argument("--model", type=Path, default=None, help="trained run dir (default: the demo's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", type=Path, default=None, help="keep recordings and work dirs here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--recording", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    from hilbert_cli.demo.run import demo_model_dir

    model = args.model or demo_model_dir(args.demo)
    if not Path(model).is_dir():
        raise SystemExit(f"{model}: no trained model; run `hilbert demo` first (or pass --model)")
    base = args.keep or Path(tempfile.mkdtemp(prefix="hilbert-bench-score-"))
    results = []
    for minutes in args.minutes:
        rec = base / f"long_{minutes:g}min" / "interview.wav"
        audio_s = make_long_recording(args.demo / "corpus" / "train", minutes, rec)
        work = base / f"work_{minutes:g}min"
        cmd = [sys.executable, __file__, "--child", "--model", str(model), "--recording", str(rec),
               "--work", str(work), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode not in (0, 1) or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"scoring the {minutes:g}-minute recording failed (exit {proc.returncode})")
        r = json.loads(lines[-1])
        r["minutes"] = minutes
        r["audio_s"] = r["audio_s"] or audio_s
        results.append(r)
        stages = ", ".join(f"{k} {r['audio_s'] / v:.1f}x" for k, v in r["timings"].items() if v > 0)
        print(f"{minutes:6g} min: peak RSS {r['peak_rss_mb']:7.0f} MB, {r['audio_s'] / r['wall_s']:5.1f}x real time "
              f"end to end ({r['wall_s']:.0f} s); per stage: {stages}"
              + (f"; FAILED: {r['failed']}" if r["failed"] else ""), flush=True)
    if len(results) > 1:
        ratio = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
        print(f"peak RSS ratio {results[-1]['minutes']:g} min / {results[0]['minutes']:g} min: {ratio:.2f} "
              f"(target <= 1.25: {'ok' if ratio <= 1.25 else 'MISSED'})")
    print(json.dumps({"results": results}, default=float))


if __name__ == "__main__":
    main()
