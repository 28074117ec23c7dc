"""`hilbert` command line: a thin Typer layer over the Python API (one module per command).

Heavy libraries (torch, transformers, pyannote) are imported inside commands, so `--help`
stays fast. Errors the user can fix print one line and exit with a documented code.
"""

from __future__ import annotations

import importlib
import os

import typer

from . import __version__

# Telemetry off before anything imports pyannote.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

app = typer.Typer(
    name="hilbert",
    help="HILBERT: document-level predictions and embeddings from long interview recordings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: command modules under hilbert_cli/commands, in help order
COMMAND_MODULES = ["demo", "prepare", "embed", "train", "score", "compare", "export", "recipes", "models", "doctor"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hilbert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    offline: bool = typer.Option(False, "--offline", help="Never contact a model hub (same as HF_HUB_OFFLINE=1)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if offline:
        from .registry import set_offline

        set_offline()


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f".commands.{_name}", __package__)
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__package__}.commands.{_name}":
            raise
        continue
    _mod.register(app)


def _exit_if_disk_full(exc: BaseException) -> None:
    """ENOSPC/EDQUOT from anywhere (a library, a wrapped error): one line and its exit code."""
    from .console import error
    from .errors import ExitCode, disk_full_cause, disk_full_message

    cause = disk_full_cause(exc)
    if cause is not None:
        error(disk_full_message(cause))
        raise SystemExit(ExitCode.DISK_FULL)


def main() -> None:
    """Console entry point: HilbertError -> one line on stderr + its exit code."""
    from .console import error
    from .errors import DiskFull, HilbertError

    try:
        rc = app(standalone_mode=False)
    except HilbertError as exc:
        if not isinstance(exc, DiskFull):  # e.g. an InputError whose cause was a full disk
            _exit_if_disk_full(exc)
        error(str(exc))
        raise SystemExit(exc.exit_code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code)
    except typer.Abort:
        error("aborted")
        raise SystemExit(130)
    except KeyboardInterrupt:
        error("interrupted")
        raise SystemExit(130)
    except Exception as exc:
        _exit_if_disk_full(exc)
        # usage errors from (Typer's vendored) click: they know how to show themselves
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            raise SystemExit(exc.exit_code)
        raise
    raise SystemExit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
