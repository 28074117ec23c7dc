"""The rich consoles: progress, logs and errors on stderr (`console`); results on stdout (`results`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
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
    """One error line; the message is plain text (escaped: `hilbert-cli[ray]` is not markup)."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    """One warning line; the message is plain text, as in error()."""
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    """A log line on stderr; the message may hold rich markup (escape any user text in it)."""
    console.print(message, soft_wrap=True)


def result(message: str) -> None:
    """One result line on stdout (a summary, a path): plain text, never wrapped, so it can be
    grepped or redirected whatever the terminal width."""
    results.print(message, markup=False, soft_wrap=True)


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
