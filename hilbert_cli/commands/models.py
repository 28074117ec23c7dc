from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

models_app = typer.Typer(help="List and fetch the models in the registry (models/registry.toml).", no_args_is_help=True)


@models_app.command("list")
def list_models(kind: Optional[str] = typer.Option(None, help="Only this kind (audio_encoder, text_encoder, asr, ...).")) -> None:
    """Every alias, where it would load from, and whether it is available now (a table on stdout)."""
    from rich.markup import escape

    from ..console import results
    from ..registry import is_offline, locate, models_dir, registry

    table = Table(title=escape(f"models (models dir: {models_dir()}, offline: {is_offline()})"))
    # the alias is the name a user copies: never cut; the other columns fold onto more lines
    table.add_column("alias", no_wrap=True)
    for col in ("kind", "source", "dim", "available", "loads from"):
        table.add_column(col, overflow="fold")
    for alias, spec in registry().items():
        if kind and spec.kind != kind:
            continue
        r = locate(alias)
        avail = {"missing": "[red]no[/]", "hub": "[yellow]hub[/]"}.get(r.where, "[green]yes[/]")
        src = spec.repo or spec.package or "builtin"
        where = f"{r.where}: {r.path}" if r.path else r.where
        table.add_row(escape(alias), spec.kind, escape(src), str(spec.dim or ""), avail, escape(where))
    results.print(table)


@models_app.command("pull")
def pull_models(
    aliases: List[str] = typer.Argument(..., help="Registry aliases to download."),
    to: Optional[Path] = typer.Option(None, "--to", help="Directory to place <alias>/ folders in (default: the HF cache)."),
) -> None:
    """Download models for later air-gapped use (HF_TOKEN for gated repos)."""
    from ..console import result
    from ..registry import pull

    for alias in aliases:
        r = pull(alias, to=to)
        result(f"{alias} -> {r.path}")  # the paths fetched: stdout


@models_app.command("which")
def which_model(name: str = typer.Argument(..., help="A registry alias or a local path.")) -> None:
    """Print the local directory NAME loads from (downloads only when online and missing)."""
    from ..registry import resolve

    r = resolve(name)
    typer.echo(str(r.path) if r.path else f"{name}: builtin (no weights)")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
