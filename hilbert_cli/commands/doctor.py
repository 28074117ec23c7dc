from __future__ import annotations

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        models: bool = typer.Option(True, "--models/--no-models", help="Also check which registry models are available."),
    ) -> None:
        """Check the installation: package versions, device, FFmpeg, available models."""
        from ..console import console
        from ..doctor import run_checks
        from ..errors import ExitCode

        checks = run_checks(include_models=models)
        table = Table(title="hilbert doctor", show_lines=False)
        for col in ("check", "status", "detail"):
            table.add_column(col)
        for c in checks:
            status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]no[/]")
            table.add_row(c.name, status, c.detail)
        console.print(table)
        broken = [c.name for c in checks if c.required and not c.ok]
        if broken:
            console.print(f"[bold red]broken installation:[/] {', '.join(broken)}")
            raise typer.Exit(ExitCode.BROKEN)
        console.print("[green]installation ok[/]")
