"""`hilbert compare RECIPE`: variants, loss ablation and weight sweeps over the same folds, one report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .train import DeviceOpt, FeaturesOpt, LabelsOpt, RecipeArg, TasksOpt, ThreadsOpt

PARTS = ("variants", "ablation", "sweep")


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        recipe: RecipeArg,
        features: FeaturesOpt = None,
        labels: LabelsOpt = None,
        out: Optional[Path] = typer.Option(None, "--out", help="Report directory (default: <output_dir>/<compare.name or NAME_compare>)."),
        tasks: TasksOpt = None,
        only: Optional[str] = typer.Option(None, "--only", help="Comma-separated parts to run: variants, ablation, sweep (default: all)."),
        folds: Optional[int] = typer.Option(None, "--folds", help="Override train.n_folds (>= 2)."),
        n_boot: Optional[int] = typer.Option(None, "--n-boot", help="Override compare.stats.n_boot (bootstrap replicates)."),
        device: DeviceOpt = None,
        threads: ThreadsOpt = None,
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier report in the same directory."),
        set_: List[str] = typer.Option([], "--set", help="Override any recipe key: --set compare.sweep.values=[0,1] (repeatable)."),
    ) -> None:
        """Compare variants (e.g. a CLAP baseline, transfer, HILBERT) over identical folds, with 95 %
        intervals and paired tests; ablate the three auxiliary losses (paper Table 4); sweep their
        weights; report modality-balance diagnostics. Writes report.md, compare.json, runs.parquet,
        oof.parquet and PNG plots."""
        from ..errors import ConfigError
        from ..recipes import load_recipe
        from .train import recipe_overrides

        overrides = recipe_overrides(set_, features=features, labels=labels, folds=folds, device=device, threads=threads)
        if n_boot is not None:
            overrides.append(f"compare.stats.n_boot={int(n_boot)}")
        parts = tuple(p.strip() for p in only.split(",") if p.strip()) if only else PARTS
        bad = [p for p in parts if p not in PARTS]
        if bad:
            raise ConfigError(f"--only: unknown part(s) {', '.join(bad)} (choose from {', '.join(PARTS)})")
        rec = load_recipe(recipe, overrides=overrides, check_files=True)
        from ..evaluation.compare import compare as run_compare

        task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
        run = run_compare(rec, out_dir=out, overwrite=overwrite, tasks=task_list, parts=parts)
        from .train import print_run_paths

        print_run_paths(run.run_dir)
