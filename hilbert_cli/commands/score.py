"""`hilbert score` (recordings -> scores with a trained model) and `hilbert merge` (shards -> one table).

Exit codes (README): 0 every recording scored; 1 the run finished but some recordings failed
(one error row each in the table); 2 bad usage, bad model directory or input (or no
recordings): nothing scored; 4 the disk filled up (what was written is intact: free space and
run the same command again).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..engines.options import (
    EngineOpt,
    JobsOpt,
    RayAddressOpt,
    RayConcurrencyOpt,
    RayNumCpusOpt,
    RayNumGpusOpt,
    engine_settings,
)
from . import check_transcripts_dir

NO_MODEL = "no model: pass --model DIR or set HILBERT_MODEL"


def score(
    input: Path = typer.Argument(..., help="A directory of recordings (recursive), one audio file, or a list file."),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", envvar="HILBERT_MODEL",
        help="Trained run directory (from `hilbert train`); default: $HILBERT_MODEL.",
    ),
    out: Path = typer.Option(
        Path("scores.parquet"), "--out", "-o",
        help="Output .parquet file; or a directory (trailing /) that receives part-K-of-N.parquet.",
    ),
    work: Optional[Path] = typer.Option(
        None, "--work", "-w",
        help="Work directory caching prepare/embed/score outputs per recording (default: hilbert_work/ next to --out). "
        "Share it between shards and re-runs.",
    ),
    embeddings: bool = typer.Option(False, "--embeddings", help="Add z_a z_t z_j h_a h_t h_j list columns."),
    explain: bool = typer.Option(
        False, "--explain",
        help="Also write the evidence table: per recording and task, the segments the model's attention weighted "
        "most (audio, text, joint) with times, speaker and text, beside --out (scores.evidence/ or DIR/_evidence/). "
        "Attention is not causal attribution (docs/CONTRACTS.md, Evidence table).",
    ),
    explain_top: Optional[int] = typer.Option(
        None, "--explain-top", min=1, metavar="K", help="Segments per task and view in the evidence table "
        "(default 5; implies --explain).",
    ),
    transcripts: Optional[Path] = typer.Option(
        None, "--transcripts", help="Existing transcripts (.json/.srt/.vtt/.txt named like the recordings) instead of ASR."
    ),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: score only shard K (0-based) of N (job arrays)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-score recordings already scored with the same options."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    engine: EngineOpt = "local",
    jobs: JobsOpt = 1,
    ray_address: RayAddressOpt = None,
    ray_num_cpus: RayNumCpusOpt = None,
    ray_num_gpus: RayNumGpusOpt = None,
    ray_concurrency: RayConcurrencyOpt = None,
) -> None:
    """Score recordings with a trained HILBERT model: one streaming pass per recording.

    Decode -> diarize -> transcribe (or --transcripts) -> segment -> embed with exactly the
    backbones and options the model was trained with -> model. Cached stage outputs in the
    work directory are reused. Killed and restarted, it ends with exactly the table of an
    uninterrupted run.
    """
    from ..api import run_score
    from ..batch import Shard
    from ..console import results

    model = require_model(model)
    check_transcripts_dir(transcripts)
    sh = Shard.parse(shard)
    engine, engine_options = engine_settings(engine, ray_address, ray_num_cpus, ray_num_gpus, ray_concurrency)
    run = run_score(input, model, out, work=work, embeddings=embeddings, explain=explain, explain_top=explain_top,
                    transcripts=transcripts, device=device, shard=sh, overwrite=overwrite, engine=engine,
                    engine_options=engine_options, jobs=jobs, progress=not quiet)

    print_summary(run, results)  # the summary is the result: stdout
    raise typer.Exit(run.exit_code)


def require_model(model: Optional[Path]) -> Path:
    """--model, else $HILBERT_MODEL (Typer reads it): a container or a shell sets the model once."""
    if model is None:  # an empty HILBERT_MODEL counts as unset (click)
        from ..errors import ConfigError

        raise ConfigError(NO_MODEL)
    return model


def print_summary(run, console) -> None:
    """The run's summary table (run: api.ScoreResult)."""
    from rich.table import Table

    r = run.batch
    c = r.counts()  # from the manifest rows, like the exit code
    audio_h = r.audio_s / 3600
    rt = f"{r.audio_s / r.wall_s:.1f}x" if r.wall_s > 0 and r.audio_s > 0 else "-"
    t = Table(title="hilbert score", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("scored", str(c["done"]))
    t.add_row("skipped (already done)", str(c["skipped"]))
    no_speech = f" ({c['no_speech']} with no speech to score)" if c.get("no_speech") else ""
    t.add_row("failed", f"[red]{c['failed']}[/]{no_speech}" if c["failed"] else "0")
    if c.get("ignored"):
        t.add_row("ignored files", f"{c['ignored']} (hidden or not audio)")
    t.add_row("audio scored", f"{audio_h:.2f} h in {r.wall_s:.1f} s ({rt} real time)")
    if run.timings and r.audio_s > 0:
        t.add_row("x real time per stage", ", ".join(
            f"{k} {r.audio_s / v:.1f}x" for k, v in run.timings.items() if v > 0))
    t.add_row("table", f"{run.scores_path} ({run.n_rows} rows)")
    if r.manifest_path is not None:
        t.add_row("manifest", f"{r.manifest_path} ({len(r.rows)} files)")
    if run.evidence_path is not None:
        t.add_row("evidence", f"{run.evidence_path} ({run.n_evidence_rows} rows)")
    console.print(t)
    if c["failed"]:
        console.print(f"[yellow]{c['failed']} recording(s) failed: see the error rows (status = 'error') "
                      f"in {run.scores_path}; run the same command again to retry them.[/]")


def merge(
    sources: List[Path] = typer.Argument(..., help="Shard files or directories of them (e.g. scores/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged .parquet file, or a directory with --partition-by."),
    partition_by: Optional[str] = typer.Option(
        None, "--partition-by", help="Write a hive-partitioned dataset directory by this column (e.g. task)."
    ),
    expect_shards: Optional[int] = typer.Option(
        None, "--expect-shards", help="Fail unless all N shards (part-0..N-1-of-N) are present."
    ),
) -> None:
    """Merge the shard outputs of `hilbert score --shard K/N` into one table (pandas, polars, DuckDB)."""
    from ..console import result
    from ..scoring.merge import merge_scores

    path, n = merge_scores(sources, out, partition_by=partition_by, expect_shards=expect_shards)
    result(f"merged {n} rows -> {path}")  # the result: stdout


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("merge")(merge)
