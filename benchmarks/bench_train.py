"""Training benchmark at the paper's scale: one full k-fold cross-validation of one task.

Default: 500 recordings x 40 segments, d_a 1024, d_t 768, 25 folds, one binary task, variant
hilbert, the forbow recipes' model/training settings. Prints seconds per full CV (wall and
process CPU time), seconds per fold, the data loading + padding time (from Parquet), and
peak RSS.

    .venv/bin/python benchmarks/bench_train.py                   # paper scale
    .venv/bin/python benchmarks/bench_train.py --folds 5 --recordings 200   # quicker
    .venv/bin/python benchmarks/bench_train.py --d-model 128 --input-pca 0  # other settings

Wall time depends on other load on the machine; CPU time / threads estimates the wall
time on idle cores. The folds train together as one stacked model (--parallel-folds 1 trains
them one by one, as before the stacking). On a GPU machine the same command uses CUDA.

Measured (2026-11-23): 2 AMD EPYC cores, recipe defaults: 112 s per 25-fold CV, pooled AUC
0.734, peak RSS 3.9 GiB; one H100: 32 s (d_model 128, no input_pca: 26 s, AUC 0.804).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=500)
    ap.add_argument("--segments", type=int, default=40)
    ap.add_argument("--d-audio", type=int, default=1024)
    ap.add_argument("--d-text", type=int, default=768)
    ap.add_argument("--folds", type=int, default=25)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--variant", default="hilbert")
    ap.add_argument("--recipe", default="recipes/forbow_parent.toml",
                    help="take [model] / [loss] / [train] settings from this recipe")
    ap.add_argument("--d-model", type=int, default=None)
    ap.add_argument("--input-pca", type=int, default=None, help="0 = off")
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--n-heads", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--parallel-folds", type=int, default=None, help="models trained at once (0 = auto)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-folds", type=int, default=None,
                    help="run only the first N folds of the k-fold split and extrapolate to k (busy machines)")
    ap.add_argument("--no-parquet", action="store_true", help="skip the Parquet round trip (in-memory data)")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from hilbert_cli.recipes import load_recipe
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.data import FeatureDataset
    from hilbert_cli.training.splits import task_splits
    from hilbert_cli.training.synthetic import make_synthetic, write_synthetic

    rec = load_recipe(args.recipe)
    mc = rec.model_config_for(args.variant)
    upd = {}
    if args.d_model:
        upd["d_model"] = args.d_model
    if args.input_pca is not None:
        upd["input_pca"] = args.input_pca or None
    if args.n_heads:
        upd["n_heads"] = args.n_heads
    mc = mc.model_copy(update=upd)
    tc = rec.train.model_copy(update={"n_folds": args.folds, "threads": args.threads,
                                      **({"max_epochs": args.max_epochs} if args.max_epochs else {}),
                                      **({"batch_size": args.batch_size} if args.batch_size else {}),
                                      **({"lr": args.lr} if args.lr else {}),
                                      **({"patience": args.patience} if args.patience is not None else {}),
                                      **({"parallel_folds": args.parallel_folds}
                                         if args.parallel_folds is not None else {})})
    print(f"recipe {args.recipe}: variant {mc.variant}, d_model {mc.d_model}, latent {mc.latent_dim}, "
          f"n_heads {mc.n_heads}, input_pca {mc.input_pca}, batch {tc.batch_size}, lr {tc.lr}, "
          f"max_epochs {tc.max_epochs}, patience {tc.patience}, parallel_folds {tc.parallel_folds}, threads {args.threads}", flush=True)
    t = time.perf_counter()
    ds = make_synthetic(args.recordings, tasks=[("task", "audio", args.classes)], min_segments=args.segments,
                        max_segments=args.segments, d_audio=args.d_audio, d_text=args.d_text, strength=0.5, seed=0)
    print(f"synthesised {ds.n} x {args.segments} segments in {time.perf_counter() - t:.1f} s", flush=True)
    if not args.no_parquet:
        with tempfile.TemporaryDirectory() as tmp:
            feats, labels = write_synthetic(ds, tmp)
            del ds
            t = time.perf_counter()
            ds = FeatureDataset.from_parquet(feats, labels, tasks=["task"])
            load_s = time.perf_counter() - t
        print(f"load + pad from Parquet: {load_s:.2f} s ({feats.stat().st_size / 2**20:.0f} MiB file)" if False else
              f"load + pad from Parquet: {load_s:.2f} s", flush=True)
    splits = task_splits(ds, "task", args.folds, tc.seed)
    k_all = len(splits)
    if args.max_folds:
        splits = splits[: args.max_folds]
    c0 = time.process_time()
    t0 = time.perf_counter()
    last = [c0]

    def cb(k, d):
        now = time.process_time()
        print(f"  fold {k + 1:2d}: AUC {d['auc']:.3f}, {d['epochs_run']} epochs (best {d['best_epoch']}), "
              f"wall {d['seconds']:.1f} s, CPU {now - last[0]:.1f} s", flush=True)
        last[0] = now

    r = run_cv(ds, "task", mc, tc, splits, rec.loss, fold_callback=cb)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if len(splits) < k_all:
        f = k_all / len(splits)
        print(f"ran {len(splits)} of {k_all} folds: extrapolated full CV wall {wall * f:.1f} s, CPU {cpu * f:.1f} s "
              f"(~{cpu * f / args.threads:.1f} s on {args.threads} idle cores)")
    print(f"RESULT {len(splits)} of {k_all} folds ({ds.n} recordings x {args.segments} segments, d_a {ds.d_audio}, "
          f"d_t {ds.d_text}, variant {mc.variant}): wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(~{cpu / args.threads:.1f} s on {args.threads} idle cores), {wall / len(splits):.2f} s/fold, "
          f"pooled AUC {r.auc:.3f}, peak RSS {peak:.0f} MiB, load avg {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
