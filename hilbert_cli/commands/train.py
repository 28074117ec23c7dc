"""`hilbert train RECIPE`: k-fold cross-validation of every task and variant, then final models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

# the options train and compare share (one declaration each)
RecipeArg = Annotated[str, typer.Argument(help="Recipe TOML path, or a built-in recipe name (`hilbert recipes list`).")]
FeaturesOpt = Annotated[Optional[Path], typer.Option("--features", help="Override data.features (Parquet file or directory).")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="Override data.labels (CSV or Parquet).")]
TasksOpt = Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated subset of the recipe's tasks.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N, mps.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", help="torch CPU threads (1 is fastest for small models on a busy CPU).")]


def recipe_overrides(set_, *, features=None, labels=None, folds=None, device=None, threads=None) -> list[str]:
    """`--set` overrides plus the shortcut options that train and compare share."""
    overrides = list(set_)
    if features is not None:
        overrides.append(f"data.features={_q(features)}")
    if labels is not None:
        overrides.append(f"data.labels={_q(labels)}")
    if folds is not None:
        overrides.append(f"train.n_folds={int(folds)}")
    if device is not None:
        overrides.append(f"train.device={_q(device)}")
    if threads is not None:
        overrides.append(f"train.threads={int(threads)}")
    return overrides


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        recipe: RecipeArg,
        features: FeaturesOpt = None,
        labels: LabelsOpt = None,
        out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default: <output_dir>/<name> from the recipe)."),
        name: Optional[str] = typer.Option(None, "--name", help="Override the recipe name (and so the run directory)."),
        variants: Optional[str] = typer.Option(None, "--variants", help="Comma-separated subset/override of the recipe's variants."),
        tasks: TasksOpt = None,
        folds: Optional[int] = typer.Option(None, "--folds", help="Override train.n_folds (0 = final model only)."),
        device: DeviceOpt = None,
        threads: ThreadsOpt = None,
        final: Optional[bool] = typer.Option(
            None, "--final/--no-final", help="Also train the final per-task models on all data (default: the recipe's "
            "train.final_model)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of an earlier run in the same directory."),
        set_: List[str] = typer.Option([], "--set", help="Override any recipe key: --set train.max_epochs=20 (repeatable)."),
    ) -> None:
        """Cross-validate the HILBERT model (and ablation variants) on a features dataset; write
        metrics.parquet, predictions.parquet, report.md, PNG plots and models/<task>/."""
        from ..recipes import load_recipe

        overrides = recipe_overrides(set_, features=features, labels=labels, folds=folds, device=device, threads=threads)
        if name is not None:
            overrides.append(f"name={_q(name)}")
        if variants is not None:
            overrides.append("variants=[" + ", ".join(_q(v.strip()) for v in variants.split(",") if v.strip()) + "]")
        rec = load_recipe(recipe, overrides=overrides, check_files=True)
        from ..evaluation.train import train as run_train

        task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
        run = run_train(rec, out_dir=out, overwrite=overwrite, tasks=task_list, final=final)
        print_run_paths(run.run_dir, models=bool(run.final_models))


def print_run_paths(run_dir: Path, *, models: bool = False) -> None:
    """The report (and the models) a run wrote: the result of train and compare, on stdout."""
    from ..console import result

    result(f"report: {run_dir / 'report.md'}")
    if models:
        result(f"models: {run_dir} (hilbert score DIR --model {run_dir})")


def _q(v) -> str:
    """A TOML basic string for an override value."""
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
