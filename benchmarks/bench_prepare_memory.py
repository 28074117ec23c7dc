"""Memory and throughput of `hilbert prepare` with the built-in default (vad-cluster + whisper-tiny.en)
on long recordings: peak RSS must not grow with length.

    python benchmarks/bench_prepare_memory.py --minutes 10 120          # the issue's figures
    python benchmarks/bench_prepare_memory.py --minutes 2 10 --cpu-threads 1

Each length is a two-voice espeak-ng interview (about 30 s) repeated to N minutes and written
as FLAC block by block (the benchmark itself never holds the long recording). Each length runs
in a fresh process, which reports its own peak RSS (ru_maxrss: models included) and the
seconds spent per stage; the script prints x real time per stage and the RSS ratio of the
longest to the shortest run. Target (issue 4): ratio <= 1.25 and peak < 3 GB on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from hilbert_cli.batch import Recording
from hilbert_cli.prepare import PrepareOptions, Preparer
opts = PrepareOptions.model_validate_json(sys.argv[2])
p = Preparer(opts)
_ = p.diarizer
if sys.argv[4] != "diarize":
    _ = p.asr
t_load = time.perf_counter() - t0
cpu = lambda: sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
cpu0 = cpu()
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
rec = Recording("bench.flac", __import__("pathlib").Path(sys.argv[1]))
if sys.argv[4] == "diarize":
    st = p.diarize(rec)
    wall = time.perf_counter() - t
    res = {"duration_s": st.duration_s, "timings_s": st.timings, "words": 0, "turns": len(st.turns),
           "speakers": sorted({k for _, _, k in st.turns})}
else:
    out = p.process(rec)
    p.write(out, __import__("pathlib").Path(sys.argv[3]))
    wall = time.perf_counter() - t
    res = {"duration_s": out.duration_s, "timings_s": out.metadata["timings_s"], "words": out.words.num_rows,
           "turns": out.turns.num_rows, "speakers": out.metadata["speakers"]}
print(json.dumps({
    **res, "wall_s": wall, "load_s": t_load, "cpu_s": cpu() - cpu0, "loadavg": __import__("os").getloadavg()[0],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_load_mb": rss_loaded,
}))
"""


def make_recording(path: Path, minutes: float, base: Path) -> Path:
    import numpy as np
    import soundfile as sf

    clip, sr = sf.read(str(base), dtype="float32")
    total = int(minutes * 60 * sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as f:
        written = 0
        while written < total:
            n = min(clip.size, total - written)
            f.write(clip[:n])
            written += n
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 120.0])
    ap.add_argument("--cpu-threads", type=int, default=0, help="PrepareOptions.cpu_threads (0: library defaults)")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--asr-workers", type=int, default=0, help="PrepareOptions.asr_workers (0: one per usable core)")
    ap.add_argument("--diarize-only", action="store_true",
                    help="stop after voice activity + diarization (ASR memory is bounded by its <= 30 s windows; "
                    "this checks the length-dependent part quickly)")
    ap.add_argument("--dir", type=Path, default=None, help="where the recordings go (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    from fixtures_prepare import INTERVIEW_TURNS, two_speaker_interview

    from hilbert_cli.prepare import PrepareOptions

    opts = PrepareOptions(cpu_threads=args.cpu_threads, beam_size=args.beam_size, asr_workers=args.asr_workers)
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench_prepare_"))
    work.mkdir(parents=True, exist_ok=True)
    base, _ = two_speaker_interview(work / "base.wav", INTERVIEW_TURNS)
    results = []
    for minutes in args.minutes:
        rec = make_recording(work / f"rec_{minutes:g}min.flac", minutes, base)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(rec), opts.model_dump_json(), str(work / "out"),
                               "diarize" if args.diarize_only else "all"],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"prepare of the {minutes:g}-minute recording failed")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["minutes"] = minutes
        r["process_wall_s"] = time.perf_counter() - t
        results.append(r)
        dur = r["duration_s"]
        stages = ", ".join(f"{k} {dur / v:.1f}x RT" for k, v in r["timings_s"].items() if v > 0.05 and k != "assemble")
        print(f"{minutes:6g} min: peak RSS {r['peak_rss_mb']:7.0f} MB (after model load {r['rss_after_load_mb']:.0f} MB); "
              f"{dur / r['wall_s']:.2f}x real time overall, {r['cpu_s'] / r['wall_s']:.2f} CPU cores used "
              f"({r['cpu_s'] / dur:.3f} CPU s per audio s, load average {r['loadavg']:.1f}); {stages}; {r['words']} words, {r['turns']} turns, "
              f"speakers {r['speakers']}", flush=True)
        rec.unlink()
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        ratio = hi["peak_rss_mb"] / lo["peak_rss_mb"]
        ok = ratio <= 1.25 and hi["peak_rss_mb"] < 3072
        print(f"peak RSS ratio {hi['minutes']:g} min / {lo['minutes']:g} min = {ratio:.3f} "
              f"(target <= 1.25, peak < 3 GB): {'OK' if ok else 'MISSED'}")
    print(f"cpu_threads={args.cpu_threads}, beam_size={args.beam_size}, asr_workers={args.asr_workers}, "
          f"os.cpu_count()={os.cpu_count()}"
          + (", diarization only" if args.diarize_only else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
