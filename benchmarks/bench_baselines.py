"""What the baselines cost: one outer fold of `linear` and `segment-linear` at several scales.

Features: real ones where given (--features DIR --labels CSV, e.g. the EmoDB documents of
bench_emodb.py), tiled k times with a little noise per copy (each copy its own group) to reach
larger studies; else random features of the paper's widths (d_a 1024 + d_t 768, 40 segments a
recording). segment-linear's inner CV (which picks C) runs on at most INNER_MAX_RECORDINGS of the
training recordings, so its cost grows with the final fit only.

    python benchmarks/bench_baselines.py --features /tmp/hilbert_bench_emodb/docs10_seed0/work/features/whisperTinyEnc__allMiniLM6 \\
        --labels /tmp/hilbert_bench_emodb/docs10_seed0/labels.csv --task neg_majority --group-column speaker --tiles 1,5,10

Measured 2026-12-06, 2 AMD EPYC cores, nothing else heavy running, EmoDB whisperTinyEnc +
allMiniLM6 (d 1152, ~15 segments a document), seconds for one outer fold:

    recordings   segments   linear   segment-linear
    100          1509       0.6      8.5
    500          7545       0.3      12.0
    1000         15090      0.4      12.0

so a 25-fold CV adds ~4-5 minutes per task for segment-linear ([train] baselines may leave it
out); bench_train.py's paper-scale hilbert CV takes ~2 minutes per task on the same cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tiled(ds, k: int, task: str, seed: int = 0):
    import torch

    from hilbert_cli.training.data import FeatureDataset

    g = torch.Generator().manual_seed(seed)
    ids, audio, text, labels, groups = [], [], [], [], []
    for c in range(k):
        for i in range(ds.n):
            m = ds.mask[i]
            a = ds.audio[i][m]
            audio.append((a + (0.05 * torch.randn(a.shape, generator=g) if c else 0)).numpy())
            text.append(ds.text[i][m].numpy())
            labels.append(int(ds.labels[task][i]))
            groups.append(f"{c}-{ds.groups[i] if ds.groups is not None else i}")
            ids.append(f"{c}-{ds.recording_ids[i]}")
    return FeatureDataset.from_arrays(ids, audio, text, {task: labels}, groups=groups,
                                      class_names={task: list(ds.class_names[task])})


def random_dataset(n: int, seed: int = 0):
    from hilbert_cli.training.data import FeatureDataset

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    audio = [(rng.normal(size=(40, 1024)) + 0.1 * y[i]).astype(np.float32) for i in range(n)]
    text = [rng.normal(size=(40, 768)).astype(np.float32) for _ in range(n)]
    return FeatureDataset.from_arrays([f"r{i}" for i in range(n)], audio, text, {"y": list(map(int, y))},
                                      groups=[f"g{i // 2}" for i in range(n)], class_names={"y": ["0", "1"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=Path)
    ap.add_argument("--labels", type=Path)
    ap.add_argument("--task", default="y")
    ap.add_argument("--group-column", default=None)
    ap.add_argument("--tiles", default="1,5", help="copies of the real dataset (with --features)")
    ap.add_argument("--recordings", default="150,500", help="sizes of the random dataset (without --features)")
    args = ap.parse_args()
    from hilbert_cli.training.baselines import run_baseline_cv
    from hilbert_cli.training.data import FeatureDataset

    if args.features:
        base = FeatureDataset.from_parquet(args.features, args.labels, tasks=[args.task],
                                           group_column=args.group_column, max_segments=512)
        sets = [(f"{args.features.name} x{k}", tiled(base, int(k), args.task)) for k in args.tiles.split(",")]
        task = args.task
    else:
        sets = [(f"random {n}", random_dataset(int(n))) for n in args.recordings.split(",")]
        task = "y"
    print("| data | recordings | segments | d | linear: s / fold | segment-linear: s / fold | C chosen |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, ds in sets:
        n = ds.n
        split = [(np.arange(n - n // 10), np.arange(n - n // 10, n))]  # one outer fold: 90 % / 10 %
        secs = {}
        for kind in ("linear", "segment-linear"):
            t = time.perf_counter()
            r = run_baseline_cv(ds, task, split, kind)
            secs[kind] = time.perf_counter() - t
        print(f"| {name} | {n} | {int(ds.mask.sum())} | {ds.d_audio + ds.d_text} | {secs['linear']:.1f} | "
              f"{secs['segment-linear']:.1f} | {r.diagnostics[0].get('C')} |", flush=True)


if __name__ == "__main__":
    main()
