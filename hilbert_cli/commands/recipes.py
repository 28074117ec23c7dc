"""`hilbert recipes list|show|validate`: the built-in recipes and recipe checking."""

from __future__ import annotations

from typing import List

import typer

recipes_app = typer.Typer(help="Built-in training recipes: list, show, validate.", no_args_is_help=True)


@recipes_app.command("list")
def list_recipes() -> None:
    """The built-in recipes (usable by name: `hilbert train demo`)."""
    import tomllib

    from rich.markup import escape
    from rich.table import Table

    from ..console import results
    from ..recipes import builtin_recipes, builtin_recipes_dir

    table = Table(title=escape(f"built-in recipes ({builtin_recipes_dir()})"))
    table.add_column("name", no_wrap=True)  # the name a user passes to `hilbert train`: never cut
    for col in ("tasks", "variants", "description"):
        table.add_column(col, overflow="fold")
    for name, path in builtin_recipes().items():
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            table.add_row(escape(name), "?", "?", "[red]invalid TOML[/]")
            continue
        tasks = ", ".join(str(t.get("name", "?")) for t in raw.get("tasks", []) if isinstance(t, dict))
        variants = ", ".join(map(str, raw.get("variants", ["hilbert"])))
        table.add_row(escape(name), escape(tasks), escape(variants), escape(str(raw.get("description", ""))))
    results.print(table)  # the result: stdout


@recipes_app.command("show")
def show(recipe: str = typer.Argument(..., help="Built-in name or path.")) -> None:
    """Print a recipe's TOML (copy it to start your own: hilbert recipes show demo > my.toml)."""
    from ..recipes import find_recipe

    typer.echo(find_recipe(recipe).read_text(), nl=False)


@recipes_app.command("validate")
def validate(
    recipes: List[str] = typer.Argument(..., help="Recipe paths or built-in names."),
    schema_only: bool = typer.Option(False, "--schema-only", help="Do not check that the data files exist."),
    set_: List[str] = typer.Option([], "--set", help="Apply overrides first (KEY=VALUE)."),
) -> None:
    """Check recipes against the schema (and that their data files exist): one line per problem."""
    from ..console import error, result
    from ..errors import ConfigError, ExitCode
    from ..recipes import load_recipe

    bad = 0
    for r in recipes:
        try:
            rec = load_recipe(r, overrides=set_, check_files=not schema_only)
        except ConfigError as exc:
            error(str(exc))
            bad += 1
            continue
        result(f"ok {r}: {rec.name}, {len(rec.tasks)} task(s), variants {', '.join(rec.variants)}, "
               f"{rec.train.n_folds} folds" + (" (data files not checked)" if schema_only else ""))
    if bad:
        raise typer.Exit(ExitCode.USAGE)


def register(app: typer.Typer) -> None:
    app.add_typer(recipes_app, name="recipes")
