"""Errors a user can act on, and the process exit codes the CLI documents.

Every error raised for bad input carries a one-line message naming the file or key and
the problem; the CLI prints it without a traceback.
"""

from __future__ import annotations


class ExitCode:
    """Exit codes of every `hilbert` command (documented in README.md)."""

    OK = 0
    #: the batch ran, but one or more recordings failed (see the errors table)
    PARTIAL = 1
    #: bad usage, bad recipe/config, a model that cannot be loaded: nothing was run
    USAGE = 2
    #: the installation is broken (`hilbert doctor`)
    BROKEN = 3


class HilbertError(Exception):
    """A problem the user can fix; `str()` is one line that names the file/key and the problem."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ModelUnavailable(HilbertError):
    """A model is not available (offline and not local, unknown alias, missing extra)."""


class ConfigError(HilbertError):
    """A recipe, option or model directory is invalid."""


class InputError(HilbertError):
    """A recording or table cannot be read."""


def one_line(exc: BaseException) -> str:
    """`Type: message` on a single line, for error rows and console output."""
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, HilbertError):
        return msg
    return f"{exc.__class__.__name__}: {msg}"
