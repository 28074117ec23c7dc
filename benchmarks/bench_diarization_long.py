"""Diarization alone on long recordings of many voices: DER per interview, count free.

A recording of `--minutes` is made by concatenating the demo corpus's interviews
(bench_score.make_long_recording: espeak-ng voices, true turns shifted to match) and diarized by
the real vad-cluster diarizer with each option set given; each interview in it is scored on its
own (its 2 true speakers against the hypothesis cut to it, best mapping per interview, pooled;
pyannote.metrics, collar 0.25 s), as bench_score.py's `der_block`. Faster than bench_score.py
(no ASR), so option sets can be compared on 30- and 120-minute recordings.

    .venv/bin/hilbert demo                       # once: demo_out/corpus
    .venv/bin/python benchmarks/bench_diarization_long.py --corpus demo_out/corpus --minutes 10 30 120 \\
        --variants '{"tree": {}, "nap": {"clustering": "nap-kmeans"}, "cut035": {"cluster_threshold": 0.35}}'
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bench_score import make_long_recording


def der_per_interview(turns, blocks: list[dict]) -> tuple[float, float]:
    """(pooled DER over interviews, mean speakers found per interview)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp = Annotation()
    for i, (s, e, spk) in enumerate(turns):
        hyp[Segment(s, e), i] = spk
    metric, found = DiarizationErrorRate(collar=0.25), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in blocks:
            ref = Annotation()
            for i, t in enumerate(b["turns"]):
                ref[Segment(t["start_s"], t["end_s"]), i] = t["speaker"]
            window = Segment(b["offset_s"], b["end_s"])
            part = hyp.crop(window, mode="intersection")
            metric(ref, part, uem=Timeline([window]))
            found.append(len(part.labels()))
    return float(abs(metric)), float(np.mean(found))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("demo_out/corpus"))
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 30])
    ap.add_argument("--variants", default='{"default": {}}', help="JSON: name -> PrepareOptions fields")
    ap.add_argument("--tmp", type=Path, default=None, help="where the long recordings go (default: a temp dir)")
    args = ap.parse_args()

    from hilbert_cli.prepare.diarize import load_diarizer
    from hilbert_cli.prepare.options import PrepareOptions

    variants = json.loads(args.variants)
    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="hilbert_diar_long_"))
    print("| minutes | variant | DER per interview | speakers per interview | speakers in file | wall s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for minutes in args.minutes:
        wav = tmp / f"long_{minutes:g}.wav"
        _, blocks = make_long_recording(args.corpus, minutes, wav)
        for name, fields in variants.items():
            t0 = time.perf_counter()
            d = load_diarizer(PrepareOptions.model_validate({"device": "cpu", **fields})).diarize(wav)
            der, per = der_per_interview(d.turns, blocks)
            print(f"| {minutes:g} | {name} | {der:.3f} | {per:.2f} | {len({t[2] for t in d.turns})} "
                  f"| {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
