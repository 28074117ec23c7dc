"""`hilbert train RECIPE`: cross-validate every (task, variant), then fit the final model per task.

The cross-validation is the one experiment runner's (experiment.py: folds made once per task,
the `linear`, `segment-linear` and `length-only` baselines on the same folds); the final models and their
calibration are train's own. Writes under <output_dir>/<name>/: metrics.parquet,
predictions.parquet, summary.json, report.md, roc_<task>.png, folds_<task>.png, recipe.toml
(the validated recipe as run) and models/<task>/{model.safetensors, config.json}.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..console import info, make_progress, warn
from ..errors import ConfigError
from ..training.baselines import BASELINES
from ..training.cv import CVResult
from .experiment import PRIMARY, Experiment, RunSpec, load_dataset

__all__ = ["TrainResult", "TrainRun", "train", "train_recipe", "load_dataset"]

OUTPUTS = ("metrics.parquet", "predictions.parquet", "summary.json", "report.md")


@dataclass
class TrainResult:
    """What `train` made: the run directory, every CV result (baselines included), the final models."""

    run_dir: Path
    results: list[CVResult]
    final_models: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def report(self) -> Path:
        return self.run_dir / "report.md"

    def table(self) -> list[dict]:
        from .train_report import summary_rows

        return summary_rows(self.results)


#: the name of earlier releases
TrainRun = TrainResult


def _diagnostics_markdown(results) -> Optional[str]:
    try:
        from .diagnostics import diagnostics_markdown

        return diagnostics_markdown(results)
    except Exception as exc:  # noqa: BLE001 - a report section must never fail the run
        warn(f"diagnostics table skipped ({exc})")
        return None


def _calibration(cv: Optional[CVResult]) -> Optional[dict]:
    """The final model's calibration map, fitted on its variant's out-of-fold probabilities (None
    without a CV, or when the folds saw one class only)."""
    if cv is None or len(cv.y) < 2 or len(np.unique(cv.y)) < 2:
        return None
    from ..training.calibration import cross_fitted_errors, fit_calibration

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


def _fit_final(recipe, ds, t: str, variant: str, cv: Optional[CVResult]):
    """The final model of task t on every labelled recording; its epochs from the CV when there is one."""
    from ..training.splits import inner_split
    from ..training.trainer import fit_model

    tc = recipe.train
    idx = ds.task_indices(t)
    mc = recipe.model_config_for(variant)
    if cv is not None and cv.best_epochs:
        n_ep = max(1, int(round(float(np.median(cv.best_epochs)))))
        return idx, fit_model(ds, t, idx, mc, tc, recipe.loss, n_epochs=n_ep, seed=tc.seed)
    if tc.epoch_choice == "inner_cv":  # no CV to take epochs from: an inner CV of all recordings
        from ..training.cv import choose_epochs

        n_ep = choose_epochs(ds, t, [idx], mc, tc, recipe.loss, seed=tc.seed)[0][0]
        return idx, fit_model(ds, t, idx, mc, tc, recipe.loss, n_epochs=n_ep, seed=tc.seed)
    fit_idx, val_idx = inner_split(idx, ds.labels[t], ds.groups, tc.val_fraction, tc.seed)
    return idx, fit_model(ds, t, fit_idx, mc, tc, recipe.loss, val_idx=val_idx, seed=tc.seed)


def _final_model(recipe, ds, t: str, variant: str, cv: Optional[CVResult], run_dir: Path) -> dict:
    from ..training.checkpoint import save_task_model

    tc = recipe.train
    idx, fitted = _fit_final(recipe, ds, t, variant, cv)
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
    return {"variant": variant, "epochs": fitted.epochs_run, "n": len(idx), "dir": str(mdir.relative_to(run_dir)),
            "calibration": calibration, "calibration_applied": applied is not None}


def train(recipe, *, out_dir: Optional[Path] = None, overwrite: bool = False,
          variants: Optional[Sequence[str]] = None, tasks: Optional[Sequence[str]] = None,
          final: Optional[bool] = None, progress: bool = True, dataset=None) -> TrainResult:
    """Run a validated Recipe end to end (see module docstring) -> TrainResult."""
    from .. import __version__
    from ..devices import pick_device
    from ..nn.config import VARIANTS
    from .diagnostics import make_diagnostics_fn
    from .train_report import plot_task, summary_rows, write_metrics, write_predictions, write_summary, write_train_report

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
    device = pick_device(tc.device)
    ds = dataset if dataset is not None else load_dataset(recipe)
    grouped = ds.groups is not None
    final_variant = recipe.final if recipe.final in variants else variants[0]
    do_final = tc.final_model if final is None else final
    info(f"[bold]{recipe.name}[/]: {ds.n} recordings, {len(task_names)} task(s), variants {', '.join(variants)}, "
         f"{tc.n_folds}-fold{' grouped' if grouped else ''} CV on {device}")

    prog = make_progress() if progress else None
    bar = None

    def on_fold(spec, k, d):
        if prog is not None and not spec.baseline:
            prog.update(bar, advance=1, status=f"{spec.task}/{spec.variant} fold {k + 1}: AUC {d['auc']:.3f}")

    def on_epoch(spec, k, rec):
        if prog is not None:
            prog.update(bar, status=f"{spec.task}/{spec.variant} fold {k + 1} epoch {rec['epoch']}")

    exp = Experiment({PRIMARY: ds}, tc, grouped=grouped, diagnostics=make_diagnostics_fn if tc.diagnostics else None,
                     on_fold=on_fold, on_epoch=on_epoch)
    frames = {t: exp.frame(t) for t in task_names} if tc.n_folds >= 2 else {}
    results: list[CVResult] = []
    final_models: dict[str, dict] = {}
    if prog is not None:
        prog.start()
    try:
        bar = prog.add_task("cross-validation", total=sum(len(f.splits) for f in frames.values()) * len(variants),
                            status="") if prog else None
        for t in task_names:
            if t not in frames:
                continue
            for v in variants:
                results.append(exp.run(RunSpec(t, v, PRIMARY, recipe.model_config_for(v), recipe.loss)).cv)
                _log_cv(results[-1])
            for kind in (b for b in BASELINES if b in recipe.train.baselines):  # the honest baselines, same folds
                results.append(exp.run(RunSpec(t, kind, PRIMARY, recipe.model, recipe.loss, baseline=kind)).cv)
                _log_cv(results[-1])
        if do_final:
            fbar = prog.add_task("final models", total=len(task_names), status="") if prog else None
            for t in task_names:
                cv = next((r for r in results if r.task == t and r.variant == final_variant), None)
                final_models[t] = _final_model(recipe, ds, t, final_variant, cv, run_dir)
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
            from ..training.calibration import cross_fitted_probs, plot_reliability

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
    write_train_report(run_dir / "report.md", recipe=recipe, results=results, dataset=ds, final_models=final_models,
                       plots=plots, seconds=seconds, grouped=grouped, device=device, diagnostics_md=diag_md)
    info(f"[green]done[/] in {seconds:.1f} s -> {run_dir}/report.md")
    return TrainResult(run_dir=run_dir, results=results, final_models=final_models, seconds=seconds)


#: the name of earlier releases (README, `hilbert_cli.train_recipe`)
train_recipe = train
