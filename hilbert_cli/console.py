"""The rich consoles: progress, logs and errors on stderr (`console`); results on stdout (`results`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)
#: results (summary tables, the paths written) go to stdout, so `hilbert ... > results.txt` keeps them
results = Console(highlight=False)


def error(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def info(message: str) -> None:
    console.print(message, soft_wrap=True)


def make_progress(*, transient: bool = False) -> Progress:
    """Progress bars with counts, elapsed time and ETA (files and audio hours use the same bar)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
    )
