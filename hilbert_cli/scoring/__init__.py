"""`hilbert score`: recordings -> document-level scores with a trained HILBERT model.

One streaming pass per recording (decode -> diarize -> transcribe or read transcripts ->
segment -> embed with exactly the backbones and options the model was trained on -> model),
reusing any stage output already cached in the work directory. Per-recording score parts
are written atomically; the final table is assembled atomically from them, so a run killed
at any moment and started again ends with exactly the rows of an uninterrupted run.

Public API (lazy, so importing this package does not import torch):

    ScoreOptions, ScoreWorker (the score stage)                       (worker.py)
    score_recordings(...) -> ScoreRun                                 (pipeline.py)
    merge_scores(sources, out, partition_by=None, expect_shards=None)  (merge.py)
    scores_schema(bundle, embeddings)                                 (schema.py)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ScoreOptions": "worker",
    "ScoreWorker": "worker",
    "ScoreRun": "pipeline",
    "score_recordings": "pipeline",
    "shard_output_path": "pipeline",
    "merge_scores": "merge",
    "scores_schema": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{mod}", __name__), name)
