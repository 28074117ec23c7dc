"""`hilbert train RECIPE`: cross-validate every (task, variant), then fit the final model per task.

Writes under <output_dir>/<name>/: metrics.parquet, predictions.parquet, summary.json,
report.md, roc_<task>.png, folds_<task>.png, recipe.toml (the validated recipe as run) and
models/<task>/{model.safetensors, config.json}.
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..console import info, make_progress, warn
from ..errors import ConfigError, InputError
from .baselines import BASELINES, run_baseline_cv
from .cv import CVResult, run_cv

__all__ = ["TrainRun", "train_recipe", "load_dataset"]

OUTPUTS = ("metrics.parquet", "predictions.parquet", "summary.json", "report.md")


@dataclass
class TrainRun:
    run_dir: Path
    results: list[CVResult]
    final_models: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> list[dict]:
        from .report import summary_rows

        return summary_rows(self.results)


def load_dataset(recipe):
    """The recipe's FeatureDataset (synthetic, or features + labels read and padded once)."""
    from .data import FeatureDataset
    from .synthetic import make_synthetic

    d = recipe.data
    tasks = recipe.tasks
    if d.synthetic is not None:
        s = d.synthetic
        ds = make_synthetic(s.n_recordings, tasks=[(t.name, t.signal, t.n_classes or len(t.classes or []) or 2)
                                                   for t in tasks],
                            min_segments=s.min_segments, max_segments=s.max_segments, d_audio=s.d_audio,
                            d_text=s.d_text, n_groups=s.n_groups, strength=s.strength, seed=s.seed)
        for t in tasks:
            if t.classes:
                ds.class_names[t.name] = list(t.classes)
        return ds
    recipe.check_files(getattr(recipe, "_source", None) or "recipe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FeatureDataset.from_parquet(d.features, d.labels, tasks={t.name: t.label_column for t in tasks},
                                         id_column=d.id_column, group_column=d.group_column,
                                         max_segments=recipe.train.max_segments,
                                         class_names={t.name: t.classes for t in tasks if t.classes})
    for w in caught:
        warn(str(w.message))
    for key in ("audio_model", "text_model"):
        want = getattr(d, key)
        got = ds.features_metadata.get(key)
        got = got.get("alias") if isinstance(got, dict) else got
        if want and got and want != got:
            raise ConfigError(f"data.{key}: the recipe expects {want!r} but {d.features} was embedded with {got!r}")
    for i, t in enumerate(tasks):
        got = len(ds.class_names[t.name])
        if t.n_classes is not None and got > t.n_classes:
            raise ConfigError(f"tasks[{i}] {t.name!r}: the recipe says {t.n_classes} classes but {d.labels} has "
                              f"{got} ({', '.join(ds.class_names[t.name])})")
        if t.n_classes is not None and got < t.n_classes:
            warn(f"task {t.name!r}: {got} of the recipe's {t.n_classes} classes occur in the labels")
        n_lab = int((ds.labels[t.name] >= 0).sum())
        if n_lab < 4:
            raise InputError(f"task {t.name!r}: only {n_lab} recording(s) with both features and a label")
    return ds


def _diagnostics_fn(task: str):
    try:
        from ..evaluation.diagnostics import make_diagnostics_fn
    except ImportError:  # pragma: no cover - the evaluation package is optional here
        return None
    return make_diagnostics_fn(task)


def _diagnostics_markdown(results) -> Optional[str]:
    try:
        from ..evaluation.diagnostics import diagnostics_markdown

        return diagnostics_markdown(results)
    except Exception as exc:  # noqa: BLE001 - a report section must never fail the run
        warn(f"diagnostics table skipped ({exc})")
        return None


def _calibration(cv: Optional[CVResult]) -> Optional[dict]:
    """The final model's calibration map, fitted on its variant's out-of-fold probabilities (None
    without a CV, or when the folds saw one class only)."""
    if cv is None or len(cv.y) < 2 or len(np.unique(cv.y)) < 2:
        return None
    from .calibration import cross_fitted_errors, fit_calibration

    return {**fit_calibration(cv.oof_probs, cv.y), **cross_fitted_errors(cv.oof_probs, cv.y, cv.fold_of)}


def _use_calibration(cal: Optional[dict], mode: str) -> bool:
    """Whether the final model stores its map: always, or (auto) when the cross-fitted figures say it
    helps recordings the map never saw. Decided on out-of-fold predictions only: no test fold."""
    if cal is None or mode == "off":
        return False
    return mode == "always" or (cal["ece_cross_fitted"] < cal["ece_raw"] and cal["brier_cross_fitted"] <= cal["brier_raw"])


def _log_cv(r: CVResult) -> None:
    info(f"  {r.task:<16} {r.variant:<16} AUC {100 * r.auc_mean:6.2f} ± {100 * r.auc_std:5.2f} "
         f"(pooled {100 * r.auc:6.2f}, {len(r.fold_aucs)} folds, {r.seconds:.1f} s)")


def train_recipe(recipe, *, out_dir: Optional[Path] = None, overwrite: bool = False,
                 variants: Optional[Sequence[str]] = None, tasks: Optional[Sequence[str]] = None,
                 final: Optional[bool] = None, progress: bool = True, dataset=None) -> TrainRun:
    """Run a validated Recipe end to end (see module docstring). Returns the TrainRun."""
    import torch

    from .. import __version__
    from ..devices import pick_device
    from .checkpoint import save_task_model
    from ..nn.config import VARIANTS
    from .report import plot_task, summary_rows, write_metrics, write_predictions, write_report, write_summary
    from .splits import check_grouped, task_splits
    from .trainer import fit_model

    t0 = time.perf_counter()
    tc = recipe.train
    run_dir = Path(out_dir) if out_dir is not None else recipe.run_dir
    if run_dir.exists() and any((run_dir / f).exists() for f in OUTPUTS) and not overwrite:
        raise ConfigError(f"{run_dir}: already holds a run (pass --overwrite, or another --name / --out)")
    variants = list(variants or recipe.variants)
    unknown = [v for v in variants if v not in recipe.variants and v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s): {', '.join(unknown)}")
    task_names = list(tasks or [t.name for t in recipe.tasks])
    missing = [t for t in task_names if t not in {x.name for x in recipe.tasks}]
    if missing:
        raise ConfigError(f"task(s) not in the recipe: {', '.join(missing)}")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    ds = dataset if dataset is not None else load_dataset(recipe)
    grouped = ds.groups is not None
    final_variant = recipe.final if recipe.final in variants else variants[0]
    do_final = tc.final_model if final is None else final
    info(f"[bold]{recipe.name}[/]: {ds.n} recordings, {len(task_names)} task(s), variants {', '.join(variants)}, "
         f"{tc.n_folds}-fold{' grouped' if grouped else ''} CV on {device}")

    results: list[CVResult] = []
    splits_by_task = {}
    if tc.n_folds >= 2:
        for t in task_names:
            sp = task_splits(ds, t, tc.n_folds, tc.seed, grouped=grouped)
            if grouped and not check_grouped(sp, ds.groups):  # pragma: no cover - sklearn guarantees it
                raise RuntimeError(f"task {t}: a group appears in train and test")
            splits_by_task[t] = sp
    total = sum(len(s) for s in splits_by_task.values()) * len(variants)
    prog = make_progress() if progress else None
    if prog is not None:
        prog.start()
    try:
        bar = prog.add_task("cross-validation", total=total, status="") if prog else None
        for t in task_names:
            for v in variants:
                if t not in splits_by_task:
                    continue

                def cb(k, d, _t=t, _v=v):
                    if prog is not None:
                        prog.update(bar, advance=1, status=f"{_t}/{_v} fold {k + 1}: AUC {d['auc']:.3f}")

                def ecb(k, rec, _t=t, _v=v):
                    if prog is not None:
                        prog.update(bar, status=f"{_t}/{_v} fold {k + 1} epoch {rec['epoch']}")

                r = run_cv(ds, t, recipe.model_config_for(v), tc, splits_by_task[t], recipe.loss, fold_callback=cb,
                           epoch_callback=ecb, diagnostics_fn=_diagnostics_fn(t) if tc.diagnostics else None)
                results.append(r)
                _log_cv(r)
            if t in splits_by_task:  # the simplest honest baselines, on the same folds
                for kind in BASELINES:
                    results.append(run_baseline_cv(ds, t, splits_by_task[t], kind))
                    _log_cv(results[-1])
        final_models: dict[str, dict] = {}
        if do_final:
            fbar = prog.add_task("final models", total=len(task_names), status="") if prog else None
            for t in task_names:
                idx = ds.task_indices(t)
                cv = next((r for r in results if r.task == t and r.variant == final_variant), None)
                mc = recipe.model_config_for(final_variant)
                if cv is not None and cv.best_epochs:
                    n_ep = max(1, int(round(float(np.median(cv.best_epochs)))))
                    fitted = fit_model(ds, t, idx, mc, tc, recipe.loss, n_epochs=n_ep, seed=tc.seed)
                elif tc.epoch_choice == "inner_cv":  # no CV to take epochs from: an inner CV of all recordings
                    from .cv import choose_epochs

                    n_ep = choose_epochs(ds, t, [idx], mc, tc, recipe.loss, seed=tc.seed)[0][0]
                    fitted = fit_model(ds, t, idx, mc, tc, recipe.loss, n_epochs=n_ep, seed=tc.seed)
                else:
                    from .splits import inner_split

                    fit_idx, val_idx = inner_split(idx, ds.labels[t], ds.groups, tc.val_fraction, tc.seed)
                    fitted = fit_model(ds, t, fit_idx, mc, tc, recipe.loss, val_idx=val_idx, seed=tc.seed)
                summary = None
                if cv is not None:
                    summary = {"auc_pooled": cv.auc, "auc_mean": cv.auc_mean, "auc_std": cv.auc_std,
                               "n_folds": len(cv.fold_aucs), "variant": cv.variant}
                calibration = _calibration(cv) if tc.calibration != "off" else None
                applied = calibration if _use_calibration(calibration, tc.calibration) else None
                mdir = save_task_model(fitted, run_dir / "models" / t, task=t, run_name=recipe.name,
                                       d_audio=ds.d_audio, d_text=ds.d_text, features_metadata=ds.features_metadata,
                                       recipe=recipe.model_dump(mode="json"), train_config=tc,
                                       max_segments=tc.max_segments, cv_summary=summary, n_train=len(idx),
                                       calibration=applied)
                final_models[t] = {"variant": final_variant, "epochs": fitted.epochs_run, "n": len(idx),
                                   "dir": str(mdir.relative_to(run_dir)), "calibration": calibration,
                                   "calibration_applied": applied is not None}
                if prog is not None:
                    prog.update(fbar, advance=1, status=t)
    finally:
        if prog is not None:
            prog.stop()

    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": recipe.model_dump(mode="json"), "features_metadata": ds.features_metadata}
    if results:
        write_metrics(results, run_dir / "metrics.parquet", meta)
        write_predictions(results, ds, run_dir / "predictions.parquet", meta)
    else:
        for f in ("metrics.parquet", "predictions.parquet"):
            (run_dir / f).unlink(missing_ok=True)
    plots = {t: plot_task(t, results, run_dir) for t in task_names if any(r.task == t for r in results)}
    for t, fm in final_models.items():  # a reliability diagram wherever a calibration map was fitted
        cv = next((r for r in results if r.task == t and r.variant == fm["variant"]), None)
        if fm.get("calibration") and cv is not None:
            from .calibration import cross_fitted_probs, plot_reliability

            p = run_dir / f"reliability_{t}.png"
            plot_reliability(t, cv.oof_probs, cross_fitted_probs(cv.oof_probs, cv.y, cv.fold_of), cv.y, p)
            plots.setdefault(t, []).append(p)
    seconds = time.perf_counter() - t0
    src = getattr(recipe, "_source", None)
    if src is not None and Path(src).is_file():
        shutil.copyfile(src, run_dir / "recipe.toml")
    write_summary(run_dir / "summary.json", summary_rows(results),
                  {"name": recipe.name, "tool_version": __version__, "device": device, "seconds": round(seconds, 2),
                   "final_variant": final_variant, "final_models": final_models, "grouped": grouped,
                   "recipe": recipe.model_dump(mode="json")})
    models_only = [r for r in results if r.variant not in BASELINES]  # the baselines have no latent views
    diag_md = _diagnostics_markdown(models_only) if tc.diagnostics and models_only else None
    write_report(run_dir / "report.md", recipe=recipe, results=results, dataset=ds, final_models=final_models,
                 plots=plots, seconds=seconds, grouped=grouped, device=device, diagnostics_md=diag_md)
    info(f"[green]done[/] in {seconds:.1f} s -> {run_dir}/report.md")
    return TrainRun(run_dir=run_dir, results=results, final_models=final_models, seconds=seconds)
