"""`hilbert doctor`: the checks table is the result (stdout); a broken installation is an error (stderr)."""

from __future__ import annotations

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        models: bool = typer.Option(True, "--models/--no-models", help="Also check which registry models are available."),
    ) -> None:
        """Check the installation: package versions, device, FFmpeg, available models."""
        from rich.markup import escape

        from ..console import error, result, results
        from ..doctor import run_checks
        from ..errors import ExitCode

        checks = run_checks(include_models=models)
        table = Table(title="hilbert doctor", show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for c in checks:
            status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]no[/]")
            table.add_row(escape(c.name), status, escape(c.detail))
        results.print(table)
        broken = [c.name for c in checks if c.required and not c.ok]
        if broken:
            error(f"broken installation: {', '.join(broken)}")
            raise typer.Exit(ExitCode.BROKEN)
        result("installation ok")
