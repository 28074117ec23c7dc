"""`hilbert train`'s outputs: metrics.parquet, predictions.parquet, summary.json, the PNG plots and
the report's sections (written by the one report writer, report.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import __version__
from ..parquet_io import write_table_atomic
from ..training.cv import CVResult
from ..training.metrics import roc_curves
from .report import Section, write_report

__all__ = ["write_metrics", "write_predictions", "summary_rows", "train_sections", "write_train_report", "plot_task",
           "write_summary"]


def _fmt(v: float, digits: int = 3) -> str:
    return "nan" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def write_metrics(results: Sequence[CVResult], path: Path, metadata: dict) -> Path:
    import pyarrow as pa

    rows = {k: [] for k in ("task", "variant", "fold", "auc", "n_train", "n_val", "n_test", "best_epoch", "seconds")}
    for r in results:
        for k, auc in enumerate(r.fold_aucs):
            d = r.diagnostics[k] if k < len(r.diagnostics) else {}
            rows["task"].append(r.task)
            rows["variant"].append(r.variant)
            rows["fold"].append(k)
            rows["auc"].append(float(auc))
            rows["n_train"].append(int(r.n_train[k]))
            rows["n_val"].append(int(r.n_val[k]))
            rows["n_test"].append(int(r.n_test[k]))
            rows["best_epoch"].append(int(d.get("best_epoch", 0)))
            rows["seconds"].append(float(d.get("seconds", 0.0)))
    schema = pa.schema([("task", pa.string()), ("variant", pa.string()), ("fold", pa.int32()), ("auc", pa.float64()),
                        ("n_train", pa.int32()), ("n_val", pa.int32()), ("n_test", pa.int32()),
                        ("best_epoch", pa.int32()), ("seconds", pa.float64())])
    return write_table_atomic(pa.table(rows, schema=schema), path, metadata={"stage": "train", "table": "metrics",
                                                                              **metadata})


def write_predictions(results: Sequence[CVResult], dataset, path: Path, metadata: dict) -> Path:
    """Out-of-fold probabilities: one row per (recording, task, variant).

    The true class is `true_label` / `true_index` and the argmax class `predicted`: in the scores
    table `label` is the predicted class, so no column here is called `label` (CONTRACTS.md)."""
    import pyarrow as pa

    rows = {k: [] for k in ("recording_id", "task", "variant", "fold", "true_label", "true_index", "predicted",
                            "probs")}
    groups = []
    for r in results:
        for j, i in enumerate(r.indices):
            p = r.oof_probs[j]
            rows["recording_id"].append(dataset.recording_ids[i])
            rows["task"].append(r.task)
            rows["variant"].append(r.variant)
            rows["fold"].append(int(r.fold_of[j]))
            rows["true_label"].append(r.class_names[int(r.y[j])])
            rows["true_index"].append(int(r.y[j]))
            rows["predicted"].append(r.class_names[int(np.argmax(p))])
            rows["probs"].append([float(x) for x in p])
            groups.append(None if dataset.groups is None else str(dataset.groups[i]))
    schema = pa.schema([("recording_id", pa.string()), ("task", pa.string()), ("variant", pa.string()),
                        ("fold", pa.int32()), ("true_label", pa.string()), ("true_index", pa.int32()),
                        ("predicted", pa.string()), ("probs", pa.list_(pa.float32()))])
    table = pa.table(rows, schema=schema)
    if dataset.groups is not None:
        table = table.append_column("group", pa.array(groups, pa.string()))
    classes = {r.task: r.class_names for r in results}
    return write_table_atomic(table, path, metadata={"stage": "train", "table": "predictions",
                                                     "class_names": classes, **metadata})


def summary_rows(results: Sequence[CVResult]) -> list[dict]:
    out = []
    for r in results:
        v = np.asarray(r.fold_aucs, float)
        fin = v[np.isfinite(v)]
        out.append({"task": r.task, "variant": r.variant, "n": int(len(r.indices)), "n_classes": len(r.class_names),
                    "n_folds": len(r.fold_aucs), "auc_pooled": r.auc, "auc_mean": r.auc_mean, "auc_std": r.auc_std,
                    "auc_min": float(fin.min()) if len(fin) else float("nan"),
                    "auc_max": float(fin.max()) if len(fin) else float("nan"),
                    "median_best_epoch": float(np.median(r.best_epochs)) if r.best_epochs else None,
                    "seconds": round(r.seconds, 2)})
    return out


def plot_task(task: str, results: Sequence[CVResult], out_dir: Path) -> list[Path]:
    """roc_<task>.png (pooled out-of-fold, macro one-vs-rest) and folds_<task>.png (per-fold AUC)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    res = [r for r in results if r.task == task]
    paths = []
    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=110)
    for r in res:
        fpr, tpr = roc_curves(r.y, r.oof_probs)
        ax.plot(fpr, tpr, label=f"{r.variant} (AUC {_fmt(r.auc)})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{task}: out-of-fold ROC (macro OvR)",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    p = out_dir / f"roc_{task}.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(res) + 2), 4.0), dpi=110)
    data = [np.asarray(r.fold_aucs, float)[np.isfinite(r.fold_aucs)] for r in res]
    ax.boxplot(data, showmeans=True)
    rng = np.random.default_rng(0)
    for k, d in enumerate(data, start=1):
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(d)), d, s=10, alpha=0.6)
    ax.set_xticks(range(1, len(res) + 1), [r.variant for r in res])
    ax.axhline(0.5, ls="--", c="grey", lw=0.8)
    ax.set(ylabel="AUC per fold", title=f"{task}: per-fold AUC ({len(res[0].fold_aucs) if res else 0} folds)",
           ylim=(0, 1.02))
    fig.tight_layout()
    p = out_dir / f"folds_{task}.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    return paths


def _epoch_choice(tc) -> str:
    if tc.epoch_choice == "inner_cv":
        return f"chosen by an inner {tc.inner_folds}-fold CV on each training fold"
    return "by early stopping on an inner split of each training fold"


def train_sections(*, recipe, results: Sequence[CVResult], dataset, final_models: dict,
                   plots: dict[str, list[Path]], seconds: float, grouped: bool, device: str,
                   extra_notes: Optional[list[str]] = None, diagnostics_md: Optional[str] = None) -> list[Section]:
    """The training report's sections: setup, AUC by task and variant (baselines beside the model),
    class counts, plots, per-fold AUC, diagnostics, final models, calibration, notes."""
    tasks = list(dict.fromkeys(r.task for r in results)) or [t.name for t in recipe.tasks]
    variants = list(dict.fromkeys(r.variant for r in results)) or list(recipe.variants)
    by = {(r.task, r.variant): r for r in results}
    lines = [recipe.description, ""] if recipe.description else []
    src = "synthetic features" if recipe.data.synthetic is not None else f"`{recipe.data.features}`"
    n_folds = max((len(r.fold_aucs) for r in results), default=0)
    lines += [
        f"- data: {src}; labels: `{recipe.data.labels}`" if recipe.data.labels else f"- data: {src}",
        f"- recordings: {dataset.n}; audio d={dataset.d_audio}, text d={dataset.d_text}; "
        f"segments per recording {int(dataset.lengths.min())}-{int(dataset.lengths.max())} "
        f"(median {int(np.median(dataset.lengths))})",
        f"- evaluation: {n_folds}-fold stratified{' grouped by `' + str(recipe.data.group_column or 'group') + '`' if grouped else ''}"
        f" cross-validation, seed {recipe.train.seed}; inner validation split {recipe.train.val_fraction:.0%} "
        "for early stopping; metric: one-vs-rest macro AUC",
        f"- choices: epochs {_epoch_choice(recipe.train)}; the rest fixed before the run (the recipe): nothing is tuned on a test fold",
        f"- model: d_model {recipe.model.d_model}, latent {recipe.model.latent_dim}, heads {recipe.model.n_heads}, "
        f"{recipe.model.n_experts} experts, top_k {recipe.model.top_k or 'dense'}, input_pca {recipe.model.input_pca}; "
        f"loss weights contrastive {recipe.loss.contrastive}, CKA {recipe.loss.cka}, MI {recipe.loss.mi}",
        f"- hilbert {__version__}, device {device}, {seconds:.1f} s in all",
        "",
    ]
    out = [Section(None, lines)]
    lines = [
        "| task | classes | n | " + " | ".join(variants) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in variants) + " |",
    ]
    for t in tasks:
        cells = []
        means = {v: by[(t, v)].auc_mean for v in variants if (t, v) in by}
        best = max((m for m in means.values() if np.isfinite(m)), default=None)
        for v in variants:
            r = by.get((t, v))
            if r is None:
                cells.append("-")
                continue
            cell = f"{100 * r.auc_mean:.2f} ± {100 * r.auc_std:.2f} [{100 * r.auc:.2f}]"
            if best is not None and len(variants) > 1 and r.auc_mean == best:
                cell = f"**{cell}**"
            cells.append(cell)
        any_r = next((by[(t, v)] for v in variants if (t, v) in by), None)
        n = len(any_r.indices) if any_r else 0
        nc = len(any_r.class_names) if any_r else 0
        lines.append(f"| {t} | {nc} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "AUC × 100, as in the paper's Table 2. `linear`, `segment-linear` and `length-only` are "
              "logistic-regression baselines on the same folds (hilbert_cli/training/baselines.py): `linear` on "
              "each recording's mean and std of its segment features, `segment-linear` on single segments, each "
              "labelled with its recording's label, a recording's probabilities the mean of its segments' (C by "
              "an inner CV of each training fold), `length-only` on its document statistics alone (speaking "
              "time, rate, pauses, turns; log segment count where the features carry none).", ""]
    for t in tasks:  # the one choice a baseline makes: say what it chose, fold by fold
        r = by.get((t, "segment-linear"))
        chosen = [(d["C"], d.get("inner_auc", {}).get(f"{d['C']:g}")) for d in r.diagnostics if "C" in d] if r is not None else []
        if chosen:  # with the inner AUC it won with (none: too few recordings for an inner CV, default C)
            lines += [f"`segment-linear` C chosen by the inner CV (its inner AUC), task {t}, per fold: "
                      + ", ".join(f"{c:g} ({auc:.3f})" if auc is not None and np.isfinite(auc) else f"{c:g} (default)"
                                  for c, auc in chosen), ""]
    out.append(Section("AUC by task and variant (mean ± std over folds; pooled out-of-fold AUC in brackets)", lines))
    lines = ["| task | " + "counts |", "| --- | --- |"]
    for t in tasks:
        y = dataset.labels[t][dataset.labels[t] >= 0]
        counts = np.bincount(y, minlength=len(dataset.class_names[t]))
        lines.append(f"| {t} | " + ", ".join(f"{c}: {k}" for c, k in zip(dataset.class_names[t], counts)) + " |")
    out.append(Section("Class counts", lines + [""]))
    lines = []
    for t in tasks:
        for p in plots.get(t, []):
            lines.append(f"![{p.stem}]({p.name})")
        lines.append("")
    out.append(Section("Plots", lines))
    lines = ["| task | variant | folds (AUC × 100) |", "| --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.task} | {r.variant} | " + " ".join(_fmt(100 * a, 1) for a in r.fold_aucs) + " |")
    out.append(Section("Per-fold AUC", lines + [""]))
    if diagnostics_md:
        out.append(Section("Diagnostics on the test folds (means over folds)", [
            "CKA and InfoNCE MI between the latent views; MoE gate weight per expert; AUC with one "
            "modality masked (audio-only = text masked).", "", diagnostics_md, ""]))
    if final_models:
        out += _final_model_sections(final_models, recipe.train.calibration)
    if extra_notes:
        out.append(Section("Notes", [f"- {n}" for n in extra_notes] + [""]))
    return out


def _final_model_sections(final_models: dict, calibration_mode: str) -> list[Section]:
    lines = ["| task | variant | epochs | n | directory |", "| --- | --- | --- | --- | --- |"]
    for t, info in final_models.items():
        lines.append(f"| {t} | {info['variant']} | {info['epochs']} | {info['n']} | `{info['dir']}` |")
    out = [Section("Final models (trained on all labelled recordings)", lines + [""])]
    cals = {t: info["calibration"] for t, info in final_models.items() if info.get("calibration")}
    if cals:
        lines = ["A map fitted on the final variant's out-of-fold probabilities (Platt for two classes, "
                 "temperature scaling for more); where it is applied, `hilbert score` writes calibrated "
                 "probabilities and keeps the raw ones in `raw_probabilities`. Expected calibration error (10 "
                 "bins, top label) and Brier score; *cross-fitted* = each fold calibrated by a map fitted on the "
                 "other folds, the honest figure, which decides whether the map is applied "
                 f"(train.calibration = {calibration_mode}).",
                 "", "| task | method | ECE raw | ECE calibrated (in-sample) | ECE cross-fitted | Brier raw | "
                 "Brier cross-fitted | applied |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t, c in cals.items():
            lines.append(f"| {t} | {c['method']} | {_fmt(c['ece_raw'])} | {_fmt(c['ece_calibrated'])} | "
                         f"{_fmt(c.get('ece_cross_fitted', float('nan')))} | {_fmt(c['brier_raw'])} | "
                         f"{_fmt(c.get('brier_cross_fitted', float('nan')))} | "
                         f"{'yes' if final_models[t].get('calibration_applied') else 'no'} |")
        out.append(Section("Calibration of the scores", lines + [""]))
    return out


def write_train_report(path: Path, *, recipe, **kw) -> Path:
    """report.md of a training run (see train_sections for the keywords)."""
    return write_report(path, f"{recipe.name}: cross-validated results", train_sections(recipe=recipe, **kw))


def write_summary(path: Path, rows: list[dict], extra: dict) -> Path:
    path.write_text(json.dumps({"results": rows, **extra}, indent=2, default=str))
    return path
