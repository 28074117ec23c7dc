"""`load_model(dir).predict(features)`: a trained run's task models applied to a features table.

For a notebook: the features `hilbert embed` wrote (one file or a directory) in, one typed
prediction per (recording, task) out. The models are loaded and verified by
checkpoint.load_model_dir (safetensors + JSON only, weights hash checked), and every
recording goes through TrainedBundle.predict, the same call `hilbert score` makes, so the
probabilities are the ones scoring would write for those features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import InputError

__all__ = ["load_model", "Model", "Prediction", "Predictions"]


@dataclass(frozen=True)
class Prediction:
    """One task's prediction for one recording (calibrated where the model stores a map)."""

    recording_id: str
    task: str
    label: str
    probabilities: dict[str, float]


@dataclass
class Predictions:
    """Every prediction of one `Model.predict` call, in recording then task order."""

    model_id: str
    items: list[Prediction] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.items)

    def for_task(self, task: str) -> list[Prediction]:
        return [p for p in self.items if p.task == task]

    def to_rows(self) -> list[dict]:
        """Plain rows (recording_id, task, label, prob_<class>...), e.g. for pandas.DataFrame."""
        return [{"recording_id": p.recording_id, "task": p.task, "label": p.label,
                 **{f"prob_{c}": v for c, v in p.probabilities.items()}} for p in self.items]


def _doc_stats(features: Path) -> dict:
    """recording_id -> DocStats from each features file's metadata (written by `hilbert embed`)."""
    from ..embed.doc_stats import DocStats
    from ..parquet_io import read_metadata

    files = sorted(features.rglob("*.parquet")) if features.is_dir() else [features]
    out = {}
    for f in files:
        meta = read_metadata(f)
        if meta.get("recording_id") is not None and isinstance(meta.get("doc_stats"), dict):
            out[str(meta["recording_id"])] = DocStats.from_dict(meta["doc_stats"])
    return out


class Model:
    """The task models of one training run (`hilbert train`'s models/ directory)."""

    def __init__(self, bundle):
        self.bundle = bundle

    @property
    def tasks(self) -> list[str]:
        return self.bundle.tasks

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def path(self) -> Path:
        return self.bundle.path

    def predict(self, features: str | Path, *, tasks: Optional[Sequence[str]] = None,
                recordings: Optional[Sequence[str]] = None) -> Predictions:
        """Predictions for every recording of a features file or directory (or only `recordings`).

        An InputError names the file when the features do not fit the model (other widths, or no
        document statistics for a model trained with them)."""
        from .data import load_features

        path = Path(features)
        ids, audio, text, _seg, _meta = load_features(path, recordings)
        b = self.bundle
        if len(ids) and (audio.shape[1] != b.d_audio or text.shape[1] != b.d_text):
            raise InputError(f"{path}: features of widths {audio.shape[1]} / {text.shape[1]}, but the model "
                             f"{b.model_id} expects d_audio={b.d_audio}, d_text={b.d_text}")
        unknown = [t for t in (tasks or []) if t not in b.tasks]
        if unknown:
            raise InputError(f"{b.path}: no model for task(s) {', '.join(unknown)} (tasks: {', '.join(b.tasks)})")
        docs = _doc_stats(path) if b.needs_doc_stats else {}
        out = Predictions(model_id=b.model_id)
        bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True]) if len(ids) else np.zeros(1, np.int64)
        for s, e in zip(bounds[:-1], bounds[1:]):
            rid = str(ids[s])
            if b.needs_doc_stats and rid not in docs:
                raise InputError(f"{path}: recording {rid!r} has no document statistics, which the model "
                                 f"{b.model_id} was trained with (re-run `hilbert embed`)")
            for p in b.predict(audio[s:e], text[s:e], list(tasks) if tasks else None, doc_stats=docs.get(rid)):
                out.items.append(Prediction(rid, p.task, p.label,
                                            {c: float(v) for c, v in zip(p.class_names, p.probs)}))
        return out


def load_model(path: str | Path, device: str = "cpu") -> Model:
    """Load a run directory, its models/ folder or one task folder (checkpoint.load_model_dir)."""
    from .checkpoint import load_model_dir

    return Model(load_model_dir(path, device=device))
