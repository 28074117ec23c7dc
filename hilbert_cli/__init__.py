"""hilbert: document-level predictions and embeddings from long interview recordings.

The Python API (what the `hilbert` commands call; README.md, "Python API")::

    from hilbert_cli import run_prepare, PrepareOptions                    # recordings -> words (PrepareResult)
    from hilbert_cli import run_embed, EmbedOptions                        # words -> features (EmbedResult)
    from hilbert_cli import load_recipe, train_recipe, run_compare         # features -> models, reports
    from hilbert_cli import run_score                                      # recordings + model -> scores (ScoreResult)
    from hilbert_cli import discover, prepare_recordings, embed_work_dir, score_recordings  # the batch functions

Names load on first use (module ``__getattr__``), so ``import hilbert_cli`` and
``hilbert --help`` import neither torch nor pyarrow.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import Any

try:
    __version__ = _version("hilbert-cli")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: public name -> the submodule that defines it
_EXPORTS = {
    "discover": "batch",
    "PrepareOptions": "prepare.options",
    "prepare_recordings": "prepare.stage",
    "run_prepare": "api",
    "PrepareResult": "api",
    "run_embed": "api",
    "EmbedResult": "api",
    "run_score": "api",
    "ScoreResult": "api",
    "EmbedOptions": "embed.options",
    "embed_work_dir": "embed.pipeline",
    "load_recipe": "recipes",
    "ModelConfig": "nn.config",
    "TrainConfig": "training.config",
    "train": "evaluation.train",
    "TrainResult": "evaluation.train",
    "train_recipe": "evaluation.train",
    "compare": "evaluation.compare",
    "CompareResult": "evaluation.compare",
    "run_compare": "evaluation.compare",
    "load_model": "training.predictor",
    "load_model_dir": "training.checkpoint",
    "ScoreOptions": "scoring.worker",
    "score_recordings": "scoring.pipeline",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
