"""Quiet model loading, shared by every encoder module (encoders.py, clap.py, ...) so none of
them imports another for it."""

from __future__ import annotations

import contextlib

__all__ = ["quiet_loading"]


@contextlib.contextmanager
def quiet_loading():
    """No transformers load reports / progress bars while an encoder loads (stdout stays clean)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
