"""`hilbert export`: prepared recordings -> RTTM, SRT, WebVTT, Praat TextGrid (hilbert_cli.export).

Exit codes (README): 0 every recording exported; 1 some failed (one error row each in
WORK/errors/export); 2 bad usage or no prepared recordings; 4 the disk filled up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..export import FORMATS, MAX_CUE_S


def export(
    work: Path = typer.Argument(..., help="The work directory `hilbert prepare` wrote (its --out)."),
    formats: str = typer.Option(",".join(FORMATS), "--formats", "-f", help=f"Comma-separated: {', '.join(FORMATS)}."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: WORK/export)."),
    max_cue_s: float = typer.Option(MAX_CUE_S, "--max-cue-s", help="Longest SRT/VTT cue, in seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write per-recording RTTM (diarization), SRT/VTT (speaker-labelled transcript) and TextGrid
    files from the words/turns tables of `hilbert prepare`; the paths written go to stdout."""
    from ..console import console
    from ..export import export_work_dir, parse_formats

    run = export_work_dir(work, parse_formats(formats), out, max_cue_s=max_cue_s, show_progress=not quiet)
    for path in run.written:
        typer.echo(str(path))  # the result: one path a line on stdout, for xargs and friends
    r = run.result
    # the summary stays on stderr, so stdout is exactly the list of paths
    console.print(f"export: {len(r.done)} recording(s) exported, {len(r.failed)} failed; "
                  f"{len(run.written)} file(s) in {run.out_dir}", soft_wrap=True, markup=False)
    raise typer.Exit(run.exit_code)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
