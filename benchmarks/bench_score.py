"""End-to-end throughput and quality of the built-in default vs recording length: per stage x real
time, CPU cores used, peak RSS, word error rate and diarization error rate, as a table.

    .venv/bin/hilbert demo                      # once: builds demo_out/ with a trained model
    .venv/bin/python benchmarks/bench_score.py --minutes 10 120 [--demo demo_out] [--model demo_out/demo]
    .venv/bin/python benchmarks/bench_score.py --minutes 10 --prepare-only --corpus /tmp/corpus
    .venv/bin/python benchmarks/bench_score.py --minutes 10 --prepare-only --compare /tmp/base --repeat 2

Each length gets a recording made by concatenating the demo corpus's interviews (espeak-ng
voices, cycling) up to that many minutes, written in blocks (never held whole), with its true
transcript and speaker turns shifted to match. It is scored with the built-in default pipeline
(vad-cluster diarization, whisper-tiny.en ASR, then embed + the demo model), or only prepared
(`--prepare-only`, or when there is no trained model), in a fresh process, so each peak RSS is
that run's alone. Per stage: x real time (audio s / wall s) and CPU cores used (CPU s of the
process and its children / wall s; stages that overlap share the CPU figure of the run).
WER: words against the true text (lower case, no punctuation), per interview then pooled; DER:
pyannote.metrics, collar 0.25 s, overlap scored, twice: per interview (each copy's 2 true speakers
against the hypothesis cropped to it, best mapping per copy, pooled: the quality figure) and over
the whole file (reference speakers named by voice; a long concatenation holds up to 10 voices,
so this one also counts speakers merged across interviews; see `quality`). Peak RSS ratio: last
length / first (target <= 1.25). `--compare DIR` runs another checkout of hilbert (e.g. the code before a change) on
the same recordings, interleaved with this one, each `--repeat` times (best wall time kept), so
a busy machine's noise hits both alike; the load average is printed with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SR = 16000


def corpus_root(path: Path) -> Path:
    """The corpus directory holding manifest.json (accepts its train/ folder too)."""
    path = Path(path)
    for p in (path, path.parent):
        if (p / "manifest.json").is_file():
            return p
    raise SystemExit(f"{path}: no demo corpus (manifest.json); run `hilbert demo` or pass --corpus")


def make_long_recording(corpus: Path, minutes: float, path: Path) -> tuple[float, list[dict]]:
    """Concatenate the corpus's interviews (cycling) into `path` up to `minutes`; returns the
    seconds written and the reference: one entry per interview copy, with its offset and true
    turns (speaker, start_s, end_s, text) in the long recording's time."""
    import soundfile as sf

    root = corpus_root(corpus)
    recs = sorted(json.loads((root / "manifest.json").read_text())["recordings"],
                  key=lambda r: (r["split"], r["recording_id"]))
    if not recs:
        raise SystemExit(f"{root}: the corpus lists no recordings")
    target, written, blocks = int(minutes * 60 * SR), 0, []
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as out:
        i = 0
        while written < target:
            r = recs[i % len(recs)]
            data, sr = sf.read(root / r["split"] / r["recording_id"], dtype="float32")
            assert sr == SR, f"{r['recording_id']}: {sr} Hz"
            data = data[: target - written]
            off, end = written / SR, (written + data.size) / SR
            turns = [{**t, "start_s": off + t["start_s"], "end_s": min(end, off + t["end_s"])}
                     for t in r["turns"] if off + t["start_s"] < end]
            # the voice behind each turn: the participant's espeak voice from the manifest; the
            # interviewer is one fixed voice in every interview
            for t in turns:
                t["voice"] = "interviewer" if t["speaker"] == "interviewer" else r.get("voice", t["speaker"])
            blocks.append({"offset_s": off, "end_s": end, "turns": turns, "recording_id": r["recording_id"]})
            out.write(data)
            written += data.size
            i += 1
    return written / SR, blocks


def _cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def child(args) -> None:
    """Prepare (or score) one recording in this process; print one JSON line with peak RSS,
    wall and CPU seconds per stage, and where the words and turns tables went."""
    opts = json.loads(args.options or "{}")
    c0, t0 = _cpu_s(), time.perf_counter()
    if args.prepare_only:
        from hilbert_cli.batch import Recording
        from hilbert_cli.prepare import PrepareOptions, Preparer

        p = Preparer(PrepareOptions(**opts))
        _ = p.diarizer, p.asr
        c1, t1 = _cpu_s(), time.perf_counter()
        rec = Recording("interview.wav", Path(args.recording))
        out = p.process(rec)
        p.write(out, Path(args.work))
        c2, t2 = _cpu_s(), time.perf_counter()
        stages = {"load": (t1 - t0, c1 - c0), "prepare": (t2 - t1, c2 - c1)}
        stages.update({f"prepare/{k}": (v, None) for k, v in out.metadata["timings_s"].items() if k != "assemble"})
        audio_s, failed = out.duration_s, []
    else:
        from hilbert_cli.scoring import pipeline as sp

        cpu = {}
        last = [0.0]
        tick, call = sp.ScoreWorker._tick, sp.ScoreWorker.__call__

        def timed_call(self, rec):  # CPU per stage: the same boundaries as the worker's own timings
            last[0] = _cpu_s()
            return call(self, rec)

        def timed_tick(self, stage, t):
            now = _cpu_s()
            cpu[stage] = cpu.get(stage, 0.0) + now - last[0]
            last[0] = now
            return tick(self, stage, t)

        sp.ScoreWorker._tick, sp.ScoreWorker.__call__ = timed_tick, timed_call
        so = sp.ScoreOptions(model_dir=Path(args.model), work_dir=Path(args.work), device=args.device)
        run = sp.score_recordings(Path(args.recording), so, Path(args.work) / "scores.parquet", show_progress=False)
        stages = {k: (v, cpu.get(k)) for k, v in run.timings.items()}
        audio_s, failed = run.result.audio_s, [f["message"] for f in run.result.failed]
    wall, cpu_all = time.perf_counter() - t0, _cpu_s() - c0
    import hilbert_cli

    print(json.dumps({"hilbert": hilbert_cli.__file__,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": wall, "cpu_s": cpu_all,
        "audio_s": audio_s, "failed": failed, "stages": stages, "load": os.getloadavg(),
    }))


def _norm(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (jiwer's, when installed; else a small dynamic program:
    the words are compared one interview at a time, so it stays quick)."""
    if ref and hyp:
        try:
            import jiwer

            o = jiwer.process_words(" ".join(ref), " ".join(hyp))
            return o.substitutions + o.deletions + o.insertions
        except ImportError:
            pass
    d = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, d[0] = d[:], i
        for j in range(1, len(hyp) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (ref[i - 1] != hyp[j - 1]))
    return d[len(hyp)]


def quality(work: Path, blocks: list[dict]) -> dict:
    """WER (per interview copy, pooled: words are given to the copy their midpoint falls in)
    and DER (pyannote.metrics, collar 0.25 s, overlap scored) of the prepared tables in `work`.

    Two DER figures. `der_block` (the quality figure): each interview copy scored on its own,
    its two true speakers against the hypothesis turns cropped to the copy, with the best
    speaker mapping per copy, pooled over copies (total error / total reference speech): who
    spoke when within an interview, which is what a recording of one interview asks of the
    diarizer. `der` (whole file): one mapping for the whole concatenation, reference speakers
    named by their espeak voice (the manifest's `voice`; one voice per participant, one for the
    interviewer), so it also counts every participant the diarizer merged with another across
    interviews: a 10-minute file holds about 5 voices, a 120-minute one 10, while real
    recordings of one interview hold 2."""
    import warnings

    import numpy as np
    import pyarrow.parquet as pq
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    words = pq.read_table(next(work.rglob("words/*.parquet"))).to_pydict()
    turns = pq.read_table(next(work.rglob("turns/*.parquet"))).to_pydict()
    mids = (np.asarray(words["start_s"]) + np.asarray(words["end_s"])) / 2
    edges = np.array([b["offset_s"] for b in blocks])
    which = np.searchsorted(edges, mids, side="right") - 1
    errors = n_ref = 0
    for k, b in enumerate(blocks):
        ref = _norm(" ".join(t["text"] for t in b["turns"]))
        hyp = _norm(" ".join(w for w, j in zip(words["word"], which) if j == k))
        errors += edit_distance(ref, hyp)
        n_ref += len(ref)
    reference, hypothesis = Annotation(), Annotation()
    for i, t in enumerate(t for b in blocks for t in b["turns"]):
        reference[Segment(t["start_s"], t["end_s"]), i] = t.get("voice", t["speaker"])
    for i, (s, e, k) in enumerate(zip(turns["start_s"], turns["end_s"], turns["speaker"])):
        hypothesis[Segment(s, e), i] = k
    per_block = DiarizationErrorRate(collar=0.25)  # accumulates: abs() is the pooled figure
    block_der, block_hyp_speakers = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        der = float(DiarizationErrorRate(collar=0.25)(reference, hypothesis))
        for b in blocks:
            ref_b = Annotation()
            for i, t in enumerate(b["turns"]):
                ref_b[Segment(t["start_s"], t["end_s"]), i] = t["speaker"]
            if not ref_b:
                continue
            window = Segment(b["offset_s"], b["end_s"])
            hyp_b = hypothesis.crop(window, mode="intersection")
            block_der.append(float(per_block(ref_b, hyp_b, uem=_timeline(window))))
            block_hyp_speakers.append(len(hyp_b.labels()))
        der_block = float(abs(per_block))
    return {"wer": errors / max(1, n_ref), "der": der, "der_block": der_block,
            "der_block_max": max(block_der, default=float("nan")), "n_blocks": len(block_der),
            "block_hyp_speakers_mean": float(np.mean(block_hyp_speakers)) if block_hyp_speakers else float("nan"),
            "n_ref_speakers": len(reference.labels()), "n_hyp_speakers": len(hypothesis.labels()),
            "n_words": len(words["word"]), "n_ref_words": n_ref}


def _timeline(seg):
    from pyannote.core import Timeline

    return Timeline([seg])


def run_one(args, code: Path, rec: Path, work: Path, model: Path | None) -> dict:
    """One fresh process on `rec` with the hilbert found in `code`."""
    cmd = [sys.executable, str(HERE / "bench_score.py"), "--child", "--recording", str(rec), "--work", str(work),
           "--device", args.device, "--options", args.options or "{}"]
    cmd += ["--prepare-only"] if model is None else ["--model", str(model)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(code))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode not in (0, 1) or not lines:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{code}: the run on {rec} failed (exit {proc.returncode})")
    out = json.loads(lines[-1])
    # the child must have imported this checkout's hilbert_cli (PYTHONPATH first), not the
    # venv's editable install of another one
    if not Path(out["hilbert"]).resolve().is_relative_to(Path(code).resolve()):
        raise SystemExit(f"{code}: the child ran {out['hilbert']}, not this checkout's hilbert_cli")
    return out


def table(rows: list[dict]) -> str:
    """Markdown table: one row per (code, length, stage)."""
    head = ("| code | minutes | stage | x real time | CPU cores used | CPU s / audio s | peak RSS MB | WER "
            "| DER per interview | DER whole file | load avg |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        a = r["audio_s"]
        for name, (wall, cpu) in r["stages"].items():
            if wall <= 0.05 or name == "load":
                continue
            cores = f"{cpu / wall:.2f}" if cpu is not None else ""
            per = f"{cpu / a:.3f}" if cpu is not None else ""
            out.append(f"| {r['code']} | {r['minutes']:g} | {name} | {a / wall:.1f} | {cores} | {per} | | | | | |")
        out.append(f"| {r['code']} | {r['minutes']:g} | **end to end** | **{a / r['wall_s']:.1f}** | "
                   f"{r['cpu_s'] / r['wall_s']:.2f} | {r['cpu_s'] / a:.3f} | {r['peak_rss_mb']:.0f} | "
                   f"{r['wer']:.3f} | {r['der_block']:.3f} | {r['der']:.3f} | {r['load'][0]:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 120])
    ap.add_argument("--demo", type=Path, default=Path("demo_out"), help="output directory of `hilbert demo`")
    ap.add_argument("--model", type=Path, default=None, help="trained run dir (default: the demo's)")
    ap.add_argument("--corpus", type=Path, default=None, help="demo corpus (default: DEMO/corpus)")
    ap.add_argument("--prepare-only", action="store_true", help="run `hilbert prepare` only (no trained model needed)")
    ap.add_argument("--options", default=None, help="PrepareOptions overrides as JSON (prepare only)")
    ap.add_argument("--compare", type=Path, default=None, help="another hilbert checkout, run interleaved on the same audio")
    ap.add_argument("--repeat", type=int, default=1, help="runs per (code, length); the fastest is kept")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", type=Path, default=None, help="keep recordings and work dirs here")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--recording", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    model = None
    if not args.prepare_only:
        from hilbert_cli.demo.run import demo_model_dir

        model = args.model or demo_model_dir(args.demo)
        if not Path(model).is_dir():
            raise SystemExit(f"{model}: no trained model; run `hilbert demo` first, pass --model, or --prepare-only")
    corpus = args.corpus or args.demo / "corpus"
    base = args.keep or Path(tempfile.mkdtemp(prefix="hilbert-bench-score-"))
    codes = [("this", HERE.parent)] + ([("compare", args.compare.resolve())] if args.compare else [])
    results = []
    for minutes in args.minutes:
        rec = base / f"long_{minutes:g}min" / "interview.wav"
        audio_s, blocks = make_long_recording(corpus, minutes, rec)
        best: dict[str, dict] = {}
        for rep in range(args.repeat):
            for name, code in codes if rep % 2 == 0 else codes[::-1]:  # interleaved, alternating order
                work = base / f"work_{name}_{minutes:g}min_{rep}"
                r = run_one(args, code, rec, work, model)
                r.update(code=name, minutes=minutes, audio_s=r["audio_s"] or audio_s, **quality(work, blocks))
                print(f"{name:8s} {minutes:6g} min run {rep + 1}: {r['audio_s'] / r['wall_s']:5.1f}x real time, "
                      f"{r['cpu_s'] / r['wall_s']:.2f} cores, {r['cpu_s'] / r['audio_s']:.3f} CPU s/audio s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB, WER {r['wer']:.3f}, DER per interview "
                      f"{r['der_block']:.3f} (worst {r['der_block_max']:.3f}, {r['n_blocks']} interviews, "
                      f"{r['block_hyp_speakers_mean']:.2f} speakers found per interview), DER whole file "
                      f"{r['der']:.3f} ({r['n_ref_speakers']} voices, {r['n_hyp_speakers']} found), "
                      f"load {r['load'][0]:.1f}" + (f"; FAILED: {r['failed']}" if r["failed"] else ""),
                      file=sys.stderr, flush=True)
                if name not in best or r["wall_s"] < best[name]["wall_s"]:
                    best[name] = r
        results += list(best.values())
    print(table(results))
    for name, _ in codes:
        mine = [r for r in results if r["code"] == name]
        if len(mine) > 1:
            ratio = mine[-1]["peak_rss_mb"] / mine[0]["peak_rss_mb"]
            print(f"{name}: peak RSS ratio {mine[-1]['minutes']:g} min / {mine[0]['minutes']:g} min: {ratio:.2f} "
                  f"(target <= 1.25 and < 3 GB: {'ok' if ratio <= 1.25 and mine[-1]['peak_rss_mb'] < 3072 else 'MISSED'})")
    print(f"os.cpu_count()={os.cpu_count()}, load average now {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"results": results}, default=float, indent=1))


if __name__ == "__main__":
    main()
