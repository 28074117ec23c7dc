"""Synthetic features with known signal, for tests, benchmarks and `recipes/synthetic.toml`.

Each recording is a sequence of Gaussian segment embeddings (audio d_a, text d_t). A task's
label is carried by:
- "audio": a class-specific direction added to about half of the audio segments;
- "text": the same in the text embeddings;
- "interaction": two hidden factors, one shown in audio and one in text; the label is their
  sum modulo C (XOR for binary) so neither modality alone predicts it;
- "random": nothing (labels independent of the features: AUC must be near 0.5).
With n_groups, recordings belong to speakers/families whose identity offset is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .data import FeatureDataset

__all__ = ["make_synthetic", "write_synthetic", "SIGNALS"]

SIGNALS = ("audio", "text", "interaction", "random")


def _unit(rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    v = rng.standard_normal((k, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_synthetic(n_recordings: int = 200, *, tasks: Mapping[str, str] | Sequence[tuple] | None = None,
                   n_classes: int | Mapping[str, int] = 2, min_segments: int = 8, max_segments: int = 24,
                   d_audio: int = 32, d_text: int = 24, n_groups: Optional[int] = None, strength: float = 1.0,
                   carrier_fraction: float = 0.5, seed: int = 0) -> FeatureDataset:
    """A FeatureDataset with known signal. tasks: {task_name: signal} or [(name, signal, n_classes)]
    (default {"audio": "audio", "text": "text", "interaction": "interaction", "random": "random"})."""
    rng = np.random.default_rng(seed)
    if tasks is None:
        tasks = {s: s for s in SIGNALS}
    if isinstance(tasks, Mapping):
        specs = [(name, sig, n_classes[name] if isinstance(n_classes, Mapping) else n_classes)
                 for name, sig in tasks.items()]
    else:
        specs = [tuple(t) if len(t) == 3 else (t[0], t[1], 2) for t in tasks]
    for name, sig, c in specs:
        if sig not in SIGNALS:
            raise ValueError(f"task {name!r}: signal must be one of {SIGNALS}, not {sig!r}")
        if int(c) < 2:
            raise ValueError(f"task {name!r}: n_classes must be >= 2")
    n = n_recordings
    lengths = rng.integers(min_segments, max_segments + 1, size=n)
    audio = [rng.standard_normal((int(l), d_audio)).astype(np.float32) for l in lengths]
    text = [rng.standard_normal((int(l), d_text)).astype(np.float32) for l in lengths]
    groups = None
    if n_groups:
        groups = rng.integers(0, n_groups, size=n)
        g_a = 0.7 * rng.standard_normal((n_groups, d_audio))
        g_t = 0.3 * rng.standard_normal((n_groups, d_text))
        for i in range(n):
            audio[i] += g_a[groups[i]].astype(np.float32)
            text[i] += g_t[groups[i]].astype(np.float32)
        groups = [f"g{g:03d}" for g in groups]

    def carriers(i: int) -> np.ndarray:
        return rng.random(len(audio[i])) < carrier_fraction

    labels: dict[str, list] = {}
    for name, sig, c in specs:
        c = int(c)
        y = rng.integers(0, c, size=n)
        if sig in ("audio", "text"):
            dirs = _unit(rng, c, d_audio if sig == "audio" else d_text) * strength * np.sqrt(2.0)
            target = audio if sig == "audio" else text
            for i in range(n):
                target[i][carriers(i)] += dirs[y[i]].astype(np.float32)
        elif sig == "interaction":
            fa = rng.integers(0, c, size=n)
            ft = rng.integers(0, c, size=n)
            y = (fa + ft) % c
            da = _unit(rng, c, d_audio) * strength * np.sqrt(2.0)
            dt = _unit(rng, c, d_text) * strength * np.sqrt(2.0)
            for i in range(n):
                audio[i][carriers(i)] += da[fa[i]].astype(np.float32)
                text[i][carriers(i)] += dt[ft[i]].astype(np.float32)
        labels[name] = [int(v) for v in y]
    ids = [f"rec{i:04d}.wav" for i in range(n)]
    meta = {"stage": "embed", "synthetic": True, "audio_model": {"alias": "synthetic", "dim": d_audio},
            "text_model": {"alias": "synthetic", "dim": d_text}, "seed": seed}
    return FeatureDataset.from_arrays(ids, audio, text, labels, groups=groups,
                                      class_names={name: [str(k) for k in range(int(c))] for name, _, c in specs},
                                      features_metadata=meta)


def write_synthetic(dataset: FeatureDataset, out_dir: str | Path, *, group_column: str = "group") -> tuple[Path, Path]:
    """Write a dataset as a features Parquet (the contract's columns) + labels.csv -> (features, labels)."""
    import csv

    import pyarrow as pa

    from ..parquet_io import write_table_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_id, rows_seg, a_rows, t_rows = [], [], [], []
    lengths = dataset.lengths
    for i, rid in enumerate(dataset.recording_ids):
        k = int(lengths[i])
        rows_id += [rid] * k
        rows_seg += list(range(k))
        a_rows.append(dataset.audio[i, :k].numpy())
        t_rows.append(dataset.text[i, :k].numpy())
    a = np.concatenate(a_rows).astype(np.float32)
    t = np.concatenate(t_rows).astype(np.float32)
    table = pa.table({
        "recording_id": pa.array(rows_id, pa.string()),
        "segment_index": pa.array(rows_seg, pa.int32()),
        "audio_embedding": pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), a.shape[1]),
        "text_embedding": pa.FixedSizeListArray.from_arrays(pa.array(t.ravel()), t.shape[1]),
    })
    feats = write_table_atomic(table, out / "features.parquet", metadata=dataset.features_metadata)
    labels = out / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        cols = list(dataset.labels)
        w.writerow(["recording_id", *cols] + ([group_column] if dataset.groups is not None else []))
        for i, rid in enumerate(dataset.recording_ids):
            vals = [dataset.class_names[c][dataset.labels[c][i]] if dataset.labels[c][i] >= 0 else "" for c in cols]
            w.writerow([rid, *vals] + ([dataset.groups[i]] if dataset.groups is not None else []))
    return feats, labels
