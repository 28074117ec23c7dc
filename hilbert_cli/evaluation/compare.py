"""`hilbert compare RECIPE`: variants, loss ablation and weight sweeps over the same folds, one report.

The runs are the one experiment runner's (experiment.py): each task's folds made once over
the recordings every features dataset covers, identical configurations run once (the sweep's
base point is the ablation's full combination), the `linear`, `segment-linear` and `length-only` baselines
beside the variants. This module plans the runs and turns them into the report's tables
(compare_report.py writes them).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .config import CompareSection, VariantSpec
from .experiment import PRIMARY, Experiment, RunResult, RunSpec, load_dataset
from .stats import macro_auc

__all__ = ["CompareResult", "CompareRun", "compare", "run_compare", "PARTS"]

#: the parts of a comparison, in report order
PARTS = ("variants", "ablation", "sweep")


@dataclass
class CompareResult:
    """What `compare` made: the report directory, every number of the report (compare.json) and
    the experiment that ran it (its runs, frames and folds)."""

    run_dir: Path
    results: dict  # the JSON-able summary (compare.json)
    experiment: Experiment
    seconds: float = 0.0

    @property
    def report(self) -> Path:
        return self.run_dir / "report.md"


#: the name of earlier releases
CompareRun = CompareResult


def _load_feature_sets(recipe, specs: list[VariantSpec], datasets: dict, tasks: list[str]) -> dict:
    from ..training.data import FeatureDataset

    out = dict(datasets)
    d = recipe.data
    for s in specs:
        if s.features is None:
            continue
        key = str(s.features)
        if key in out:
            continue
        if d.synthetic is not None:
            raise ConfigError(f"compare.variants {s.name!r}: features= needs a recipe with data.features/labels "
                              "(not [data.synthetic])")
        if not Path(s.features).exists():
            raise ConfigError(f"compare.variants {s.name!r}: features: not found: {s.features}")
        specs_t = {t.name: t for t in recipe.tasks}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[key] = FeatureDataset.from_parquet(
                s.features, d.labels, tasks={t: specs_t[t].label_column for t in tasks}, id_column=d.id_column,
                group_column=d.group_column, max_segments=recipe.train.max_segments,
                class_names={t: specs_t[t].classes for t in tasks if specs_t[t].classes})
    return out


def _backbones(ds) -> dict:
    meta = getattr(ds, "features_metadata", {}) or {}

    def alias(v):
        if isinstance(v, dict):
            return v.get("alias") or v.get("repo") or "?"
        return v if v else "?"

    return {"audio": alias(meta.get("audio_model")), "text": alias(meta.get("text_model")),
            "d_audio": ds.d_audio, "d_text": ds.d_text}


def compare(recipe, section: Optional[CompareSection] = None, *, out_dir: Optional[Path] = None,
            overwrite: bool = False, tasks: Optional[Sequence[str]] = None,
            parts: Sequence[str] = PARTS, datasets: Optional[dict] = None, progress: bool = True) -> CompareResult:
    """Run a recipe's comparison end to end and write the report (compare_report.py) -> CompareResult.

    section: the recipe's [compare] section (default: recipe.compare, else the defaults)."""
    from .. import __version__
    from ..console import info, make_progress, warn
    from ..devices import pick_device
    from .ablation import ablation_configs, ablation_rows, combo_label, with_without_rows
    from .compare_report import write_all
    from .diagnostics import make_diagnostics_fn
    from .stats import MULTIPLE_COMPARISONS_NOTE, compare_all
    from .sweep import sweep_configs, sweep_rows

    t0 = time.perf_counter()
    src = str(getattr(recipe, "_source", None) or "recipe")
    section = section if section is not None else (recipe.compare or CompareSection())
    tc = recipe.train
    if tc.n_folds < 2:
        raise ConfigError(f"{src}: train.n_folds: `hilbert compare` needs cross-validation (n_folds >= 2)")
    run_dir = Path(out_dir) if out_dir is not None else recipe.output_dir / (section.name or f"{recipe.name}_compare")
    if (run_dir / "report.md").exists() and not overwrite:
        raise ConfigError(f"{run_dir}: already holds a comparison (pass --overwrite, or --out elsewhere)")
    all_tasks = [t.name for t in recipe.tasks]
    task_names = list(tasks or section.tasks or all_tasks)
    unknown = [t for t in task_names if t not in all_tasks]
    if unknown:
        raise ConfigError(f"{src}: task(s) not in the recipe: {', '.join(unknown)}")
    specs = section.variant_specs(list(recipe.variants))
    bad_parts = [p for p in parts if p not in PARTS]
    if bad_parts:
        raise ConfigError(f"unknown part(s): {', '.join(bad_parts)} (variants, ablation, sweep)")
    st = section.stats
    device = pick_device(tc.device)

    datasets = dict(datasets or {})
    if PRIMARY not in datasets:
        datasets[PRIMARY] = load_dataset(recipe)
    datasets = _load_feature_sets(recipe, specs, datasets, task_names)
    grouped = datasets[PRIMARY].groups is not None

    def ablation_tasks():
        return [t for t in task_names if section.ablation.tasks is None or t in section.ablation.tasks]

    def sweep_tasks():
        return [t for t in task_names if section.sweep.tasks is None or t in section.sweep.tasks]

    # ---- what to run ---------------------------------------------------------------------
    from ..training.baselines import BASELINES

    # the simplest honest baselines sit beside the variants, on the same folds and features
    baselines = [b for b in BASELINES if b in recipe.train.baselines and b not in {s.name for s in specs}]
    row_names = [s.name for s in specs] + baselines
    plan: list[tuple[str, str, Any, RunSpec]] = []  # (part, task, tag, spec)
    for t in task_names:
        if "variants" in parts:
            for s in specs:
                plan.append(("variants", t, s.name, RunSpec(t, s.name, str(s.features) if s.features else PRIMARY,
                                                            s.model_config_for(recipe.model),
                                                            s.loss_config_for(recipe.loss))))
            for b in baselines:
                plan.append(("variants", t, b, RunSpec(t, b, PRIMARY, recipe.model, recipe.loss, baseline=b)))
        if "ablation" in parts and section.ablation.enabled and t in ablation_tasks():
            for combo, mc, lc in ablation_configs(section.ablation, recipe.model, recipe.loss):
                plan.append(("ablation", t, combo, RunSpec(t, combo_label(combo), PRIMARY, mc, lc)))
        if "sweep" in parts and section.sweep.enabled and t in sweep_tasks():
            for name, v, mc, lc in sweep_configs(section.sweep, recipe.model, recipe.loss):
                plan.append(("sweep", t, (name, v), RunSpec(t, f"{name}={v:g}", PRIMARY, mc, lc)))
    unique = list(dict.fromkeys(p[3].key for p in plan))
    info(f"[bold]compare {recipe.name}[/]: {datasets[PRIMARY].n} recordings, tasks {', '.join(task_names)}; "
         f"{len(plan)} table cells = {len(unique)} distinct cross-validations "
         f"({tc.n_folds}-fold{' grouped' if grouped else ''}, {device})")

    prog = make_progress() if progress else None
    bar = None
    engine = Experiment(datasets, tc, grouped=grouped,
                        diagnostics=make_diagnostics_fn if section.diagnostics.enabled else None,
                        on_fold=lambda spec, k, d: prog.update(bar, advance=1, status=f"{spec.task}/{spec.label} "
                                                               f"fold {k + 1}: AUC {d['auc']:.3f}") if prog else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = {t: engine.frame(t) for t in task_names}
    for w in caught:
        warn(str(w.message))
    if prog is not None:
        prog.start()
        bar = prog.add_task("compare", total=sum(len(frames[json.loads(k)["task"]].splits) for k in unique), status="")
    results: dict[str, Any] = {}
    try:
        done: dict[tuple, RunResult] = {}
        for part, t, tag, spec in plan:
            done[(part, t, tag if not isinstance(tag, list) else tuple(tag))] = engine.run(spec)
    finally:
        if prog is not None:
            prog.stop()

    # ---- tables ----------------------------------------------------------------------------
    out_tasks: dict[str, Any] = {}
    for t in task_names:
        fr = frames[t]
        entry: dict[str, Any] = {"n": fr.n, "classes": fr.class_names, "n_folds": len(fr.splits),
                                 "class_counts": np.bincount(fr.y, minlength=len(fr.class_names)).tolist(),
                                 "dropped": engine.dropped.get(t, 0)}
        var_runs = {tag: r for (part, tt, tag), r in done.items() if part == "variants" and tt == t}
        if var_runs:
            rows = []
            for name in row_names:
                r = var_runs[name]
                ci = r.auc_interval(n_boot=st.n_boot, level=st.level, seed=st.seed)
                fold = r.fold_interval(level=st.level)
                rows.append({"name": name, "variant": r.spec.variant, **_backbones(datasets[r.spec.features]),
                             "auc": ci.auc, "auc_lo": ci.lo, "auc_hi": ci.hi, "auc_fold_mean": fold.auc,
                             "auc_fold_lo": fold.lo, "auc_fold_hi": fold.hi, "auc_fold_sd": r.fold_sd,
                             "ci_method": ci.method, "fold_ci_method": fold.method, "seconds": round(r.seconds, 2),
                             "loss": {k: getattr(r.spec.loss_config, k) for k in ("contrastive", "cka", "mi")}})
            entry["variants"] = rows
            pairs = None
            if st.reference is not None and st.reference in var_runs:
                pairs = [(st.reference, name) for name in row_names if name != st.reference]
            tests = compare_all(fr.y, {n: r.oof for n, r in var_runs.items()}, groups=fr.groups, method=st.test,
                                n_boot=st.n_boot, seed=st.seed, pairs=pairs)
            entry["tests"] = [x.as_dict() for x in tests]
            if section.diagnostics.enabled:
                entry["diagnostics"] = [_diag_row(name, r, st) for name, r in var_runs.items() if not r.spec.baseline]
        abl = {tag: r for (part, tt, tag), r in done.items() if part == "ablation" and tt == t}
        if abl:
            entry["ablation"] = ablation_rows(abl, n_boot=st.n_boot, level=st.level, seed=st.seed)
            entry["with_without"] = with_without_rows(abl, test=st.test, n_boot=st.n_boot, seed=st.seed)
            entry["ablation_folds_identical"] = _same_folds(list(abl.values()))
        sw = {tag: r for (part, tt, tag), r in done.items() if part == "sweep" and tt == t}
        if sw:
            entry["sweep"] = sweep_rows(sw, recipe.loss, n_boot=st.n_boot, level=st.level, seed=st.seed)
        out_tasks[t] = entry
    n_tests = max([len(e.get("tests", [])) for e in out_tasks.values()] + [0])
    seconds = time.perf_counter() - t0
    results = {
        "name": section.name or f"{recipe.name}_compare", "recipe": recipe.name, "tool_version": __version__,
        "device": device, "seconds": round(seconds, 2), "grouped": grouped, "n_folds": tc.n_folds, "seed": tc.seed,
        "stats": st.model_dump(mode="json"), "loss": recipe.loss.model_dump(mode="json"),
        "model": recipe.model.model_dump(mode="json"), "train": tc.model_dump(mode="json"),
        "ablation_settings": section.ablation.model_dump(mode="json"), "sweep_settings": section.sweep.model_dump(mode="json"),
        "distinct_runs": len(engine.runs),
        "multiple_comparisons": MULTIPLE_COMPARISONS_NOTE.format(
            m=n_tests, alpha=0.05, method="DeLong for binary tasks, else paired bootstrap" if st.test == "auto" else st.test),
        "tasks": out_tasks,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_all(run_dir, results, done)
    info(f"[green]done[/] in {seconds:.1f} s -> {run_dir}/report.md")
    return CompareResult(run_dir=run_dir, results=results, experiment=engine, seconds=seconds)


#: the name of earlier releases (`hilbert_cli.run_compare`)
run_compare = compare


def _same_folds(runs: list[RunResult]) -> bool:
    if not runs:
        return True
    f0 = runs[0].fold_of
    return all(np.array_equal(r.fold_of, f0) for r in runs)


def _diag_row(name: str, r: RunResult, st) -> dict:
    from .stats import paired_test

    row: dict[str, Any] = {"name": name, "variant": r.spec.variant}
    for k in ("cka_a_j", "cka_t_j", "mi_a_j", "mi_t_j", "mi_gap", "mi_bound", "gate_entropy"):
        row[k] = r.diag.get(k, float("nan"))
    row["gate_mean"] = r.diag.get("gate_mean", [])
    row["auc_full"] = r.auc
    for m in ("audio_only", "text_only"):
        if m in r.masked:
            t = paired_test(r.y, r.oof, r.masked[m], groups=r.groups, names=("full", m), method=st.test,
                            n_boot=st.n_boot, seed=st.seed)
            row[f"auc_{m}"] = macro_auc(r.y, r.masked[m])
            row[f"p_full_vs_{m}"] = t.p
        else:
            row[f"auc_{m}"] = float("nan")
            row[f"p_full_vs_{m}"] = float("nan")
    from .stats import holm

    adj = holm([row["p_full_vs_audio_only"], row["p_full_vs_text_only"]])
    row["full_beats_both"] = bool(
        np.isfinite(adj).all() and (adj < 0.05).all()
        and row["auc_full"] > row["auc_audio_only"] and row["auc_full"] > row["auc_text_only"])
    return row
