"""Errors a user can act on, and the process exit codes the CLI documents.

Every error raised for bad input carries a one-line message naming the file or key and
the problem; the CLI prints it without a traceback.
"""

from __future__ import annotations

import errno
import os


class ExitCode:
    """Exit codes of every `hilbert` command (documented in README.md)."""

    OK = 0
    #: the batch ran, but one or more recordings failed (see the errors table)
    PARTIAL = 1
    #: bad usage, bad recipe/config, a model that cannot be loaded: nothing was run
    USAGE = 2
    #: the installation is broken (`hilbert doctor`)
    BROKEN = 3
    #: the disk (or quota) filled up: everything already written is intact; free space, run again
    DISK_FULL = 4


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


class DiskFull(HilbertError):
    """No space left (ENOSPC) or quota exceeded (EDQUOT) while writing: the run stops, since
    every later recording would fail the same way; files already written stay intact."""

    exit_code = ExitCode.DISK_FULL


#: errno values that mean "the disk is full", not "this recording is bad"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


#: how C libraries that drop errno (libsndfile, torch's writer) still say it
_DISK_FULL_TEXT = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def disk_full_cause(exc: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT OSError behind `exc` (itself, or anywhere in its cause/context chain;
    an error whose message is strerror(ENOSPC) counts, as some libraries lose the errno)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc
        text = str(exc).lower()
        for code, words in _DISK_FULL_TEXT.items():
            if words in text:
                return OSError(code, os.strerror(code))
        exc = exc.__cause__ or exc.__context__
    return None


def disk_full_message(exc: OSError, path: object = None, written: int | None = None, during: str = "") -> str:
    """One line: what filled up, which path (else `during` what), how much of it was written."""
    what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
    where = path if path is not None else exc.filename
    msg = f"disk full ({what})" + (f" writing {where}" if where is not None else f" {during}" if during else "")
    if written is not None:
        msg += f" ({written} bytes of it written, then removed)"
    return msg + "; files already written are intact: free space and run the same command again"


def one_line(exc: BaseException) -> str:
    """`Type: message` on a single line, for error rows and console output."""
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, HilbertError):
        return msg
    return f"{exc.__class__.__name__}: {msg}"


def format_validation_error(exc, source: str) -> str:
    """A pydantic ValidationError as one line: `source: key.path: problem; ...` (every problem)."""
    parts = []
    for err in exc.errors():
        loc = ""
        for item in err.get("loc", ()):
            loc += f"[{item}]" if isinstance(item, int) else (f".{item}" if loc else str(item))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif err.get("type") == "missing":
            msg = "missing required key"
        elif "input" in err and err.get("type") not in ("value_error",) and not isinstance(err["input"], (dict, list)):
            msg += f" (got {err['input']!r})"
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)
