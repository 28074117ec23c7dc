"""`hilbert demo`: build a synthetic interview corpus, prepare, embed, train and score it, offline."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Where the corpus, work files, run and scores go."),
    size: str = typer.Option("default", "--size", help="default (36 + 9 recordings) or small (a quick smoke run)."),
    seed: int = typer.Option(0, "--seed", help="Corpus and training seed."),
    folds: int = typer.Option(None, "--folds", help="Cross-validation folds (default: the recipe's)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    transcripts: bool = typer.Option(
        False, "--transcripts", help="Use the corpus's true transcripts instead of diarization + ASR (faster)."
    ),
) -> None:
    """Run HILBERT end to end on a built-in synthetic corpus (espeak-ng), no model hub needed.

    Builds ~36 short two-speaker interviews whose document-level affect is carried by what
    the participant says and how (pitch, rate, volume), prepares and embeds them with the
    built-in offline models, cross-validates the hilbert and transfer variants
    (recipes/demo.toml), scores held-out participants with the final model, and prints the
    AUC table. Re-running reuses everything already built.
    """
    from ..errors import ConfigError
    from ..registry import set_offline

    if size not in ("default", "small"):
        raise ConfigError(f"--size {size}: expected default or small")
    set_offline()  # the demo never needs a model hub
    from ..demo.run import print_result, run_demo

    result = run_demo(out, size=size, seed=seed, device=device, folds=folds, transcripts=transcripts)
    print_result(result)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
