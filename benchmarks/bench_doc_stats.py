"""Document statistics: does the model use how much and how fast was said, beyond a length-only model?

Builds espeak-ng interviews whose label lives partly in length (negative participants give
shorter answers with longer pauses) and partly in content and prosody (the demo's sentence
pools and prosody shifts), prepares them from their true transcripts (no ASR: this measures
the model, not the ASR), embeds them with the built-in default (spec + allMiniLM6), then
cross-validates on the same participant-grouped folds:

    length-only   logistic regression on the document statistics alone
    linear        logistic regression on mean + std of the segment features
    hilbert / transfer, with and without [model] doc_stats

and prints fold-mean AUC ± sd and the pooled out-of-fold AUC. Everything is seeded.

    .venv/bin/python benchmarks/bench_doc_stats.py [--out /tmp/bench_doc_stats] [--length-effect 0.8]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_doc_stats"))
    ap.add_argument("--length-effect", type=float, default=0.8)
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np

    from hilbert_cli.batch import discover
    from hilbert_cli.demo.corpus import CorpusSpec, build_corpus
    from hilbert_cli.demo.run import embed_options, features_dir, prepare_options, recipe_path
    from hilbert_cli.embed import embed_work_dir
    from hilbert_cli.prepare import prepare_recordings
    from hilbert_cli.recipes import load_recipe
    from hilbert_cli.training.baselines import run_baseline_cv
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.data import FeatureDataset
    from hilbert_cli.training.splits import task_splits

    t0 = time.perf_counter()
    spec = CorpusSpec(n_participants=args.participants, per_class=args.per_class, n_heldout_participants=1,
                      heldout_per_class=1, sentences_per_answer=(2, 4), length_effect=args.length_effect,
                      seed=args.seed)
    corpus = build_corpus(args.out / "corpus", spec)
    print(f"corpus: {corpus.describe()} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    work = args.out / "work"
    recs, _ = discover(corpus.train_dir)
    prepare_recordings(recs, prepare_options("cpu", corpus.transcripts / "train"), work, show_progress=False)
    embed_work_dir(work, embed_options("cpu"), show_progress=False)
    print(f"prepared + embedded ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    recipe = load_recipe(recipe_path())
    task = recipe.tasks[0]
    ds = FeatureDataset.from_parquet(features_dir(work), corpus.labels, tasks={task.name: task.label_column},
                                     group_column=recipe.data.group_column, class_names={task.name: task.classes})
    assert ds.doc is not None, "the features carry no document statistics"
    tc = recipe.train.model_copy(update={"seed": args.seed, "device": "cpu"})
    splits = task_splits(ds, task.name, tc.n_folds, tc.seed, grouped=True)
    rows = []
    for kind in ("length-only", "linear"):
        rows.append((kind, run_baseline_cv(ds, task.name, splits, kind)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*folds requested but only.*")
        for variant in ("transfer", "hilbert"):
            for doc in (False, True):
                mc = recipe.model_config_for(variant).model_copy(update={"doc_stats": doc})
                r = run_cv(ds, task.name, mc, tc, splits, recipe.loss)
                rows.append((f"{variant}{' + doc_stats' if doc else ''}", r))
    print(f"\n{ds.n} interviews, {len(splits)} participant-grouped folds, length_effect {args.length_effect}, "
          f"task {task.name} ({', '.join(task.classes)}); {time.perf_counter() - t0:.0f} s in all\n")
    print("| model | fold-mean AUC ± sd | pooled OOF AUC |")
    print("| --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r.auc_mean:.3f} ± {r.auc_std:.3f} | {r.auc:.3f} |")
    fold = {name: np.asarray(r.fold_aucs) for name, r in rows}
    for a, b in (("hilbert + doc_stats", "hilbert"), ("hilbert + doc_stats", "length-only")):
        d = fold[a] - fold[b]
        print(f"\n{a} - {b}: mean fold difference {d.mean():+.3f}, better in {int((d > 0).sum())} of {len(d)} folds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
