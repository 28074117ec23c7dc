"""Features + labels -> one padded, in-memory dataset (loaded and padded once).

Features follow docs/CONTRACTS.md, "Features table": recording_id, segment_index,
audio_embedding (fixed_size_list<float32>), text_embedding (fixed_size_list<float32>), one
row per segment, in one file or a directory of files (read with pyarrow.dataset).
Labels: CSV or Parquet with recording_id plus one column per task; an empty cell excludes
that recording from that task only. Cross-validation folds then only select indices of the
padded tensors; per-fold preprocessing (training/preprocess.py: standardisation, optional PCA)
uses sufficient statistics cached here, so no fold re-reads or re-pads anything.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError

__all__ = ["FeatureDataset", "read_labels", "subsample_positions", "load_features"]

FEATURE_COLUMNS = ("recording_id", "segment_index", "audio_embedding", "text_embedding")


def subsample_positions(n: int, max_segments: Optional[int]) -> np.ndarray:
    """Positions kept from a sequence of n segments: all, or max_segments evenly spaced."""
    if not max_segments or n <= max_segments:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_segments).round().astype(np.int64))


def _list_to_matrix(col, name: str, path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise InputError(f"{path}: {name} has {arr.null_count} null embeddings")
    n = len(arr)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max():
        raise InputError(f"{path}: {name} has embeddings of different sizes ({lengths.min()}..{lengths.max()})")
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, int(lengths[0]))


def load_features(features: str | Path, recordings: Optional[Sequence[str]] = None):
    """Read a features file or directory -> (ids, audio rows, text rows, segment_index, metadata)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from ..parquet_io import read_metadata

    path = Path(features)
    if not path.exists():
        raise InputError(f"{path}: features not found")
    try:
        ds = pads.dataset(str(path), format="parquet", exclude_invalid_files=False)
        missing = [c for c in FEATURE_COLUMNS if c not in ds.schema.names]
        if missing:
            raise InputError(f"{path}: not a features dataset (missing column(s) {', '.join(missing)})")
        flt = pc.field("recording_id").isin(list(recordings)) if recordings is not None else None
        table = ds.to_table(columns=list(FEATURE_COLUMNS), filter=flt)
    except InputError:
        raise
    except (OSError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{path}: cannot read features ({' '.join(str(exc).split())})") from exc
    meta = read_metadata(ds.files[0]) if ds.files else {}
    table = table.sort_by([("recording_id", "ascending"), ("segment_index", "ascending")])
    ids = np.asarray(table["recording_id"].to_numpy(zero_copy_only=False)).astype(str)
    seg = table["segment_index"].to_numpy(zero_copy_only=False).astype(np.int64)
    if len(ids) > 1:
        dup = (ids[1:] == ids[:-1]) & (seg[1:] == seg[:-1])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise InputError(f"{path}: segment {seg[i]} of {ids[i]!r} appears twice "
                             "(two feature sets in one directory? point data.features at one)")
    audio = _list_to_matrix(table["audio_embedding"], "audio_embedding", path)
    text = _list_to_matrix(table["text_embedding"], "text_embedding", path)
    return ids, audio, text, seg, meta


def _label_strings(values: list) -> tuple[list[Optional[str]], bool]:
    """Cell values -> class strings (None = empty cell); numeric=True when all are numbers."""
    out: list[Optional[str]] = []
    numeric = True
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
            out.append(None)
            continue
        if isinstance(v, bool):
            numeric = False
            out.append(str(v).lower())
        elif isinstance(v, (int, np.integer)):
            out.append(str(int(v)))
        elif isinstance(v, (float, np.floating)):
            out.append(str(int(v)) if float(v).is_integer() else repr(float(v)))
        else:
            s = str(v).strip()
            try:
                float(s)
            except ValueError:
                numeric = False
            out.append(s)
    return out, numeric


def read_labels(path: str | Path, id_column: str = "recording_id") -> dict[str, list]:
    """Read a labels CSV or Parquet -> {column: python values}; the id column as strings."""
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: labels file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                strings_can_be_null=True, column_types={id_column: pa.string()}))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read labels ({' '.join(str(exc).split())})") from exc
    if id_column not in table.column_names:
        raise InputError(f"{path}: no {id_column!r} column (columns: {', '.join(table.column_names)})")
    cols = {name: table[name].to_pylist() for name in table.column_names}
    cols[id_column] = [None if v is None else str(v) for v in cols[id_column]]
    seen: set = set()
    for rid in cols[id_column]:
        if rid in seen:
            raise InputError(f"{path}: recording {rid!r} appears twice")
        seen.add(rid)
    return cols


@dataclass
class FeatureDataset:
    """Every recording padded once: audio [N, L, d_a], text [N, L, d_t], mask [N, L] (True = segment).

    labels[task] is an int64 array [N] of class indices into class_names[task], -1 where the
    recording has no label for that task. groups (optional) is a str array [N] for grouped CV.
    """

    recording_ids: list[str]
    audio: torch.Tensor
    text: torch.Tensor
    mask: torch.Tensor
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: dict[str, list[str]] = field(default_factory=dict)
    groups: Optional[np.ndarray] = None
    features_metadata: dict = field(default_factory=dict)
    #: document statistics [N, k] (embed/doc_stats.py feature_vector), None when the features carry none
    doc: Optional[torch.Tensor] = None
    _stats: dict = field(default_factory=dict, repr=False)

    # ---- shape helpers ---------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.recording_ids)

    def __len__(self) -> int:
        return self.n

    @property
    def d_audio(self) -> int:
        return int(self.audio.shape[-1])

    @property
    def d_text(self) -> int:
        return int(self.text.shape[-1])

    @property
    def text_mask(self) -> torch.Tensor:
        """Audio and text segments are paired in the features contract: the same mask."""
        return self.mask

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(dim=1).numpy()

    @property
    def tasks(self) -> list[str]:
        return list(self.labels)

    def task_indices(self, task: str) -> np.ndarray:
        """Dataset positions of the recordings labelled for `task`."""
        return np.flatnonzero(self.labels[task] >= 0)

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, recording_ids: Sequence[str], audio: Sequence[np.ndarray], text: Sequence[np.ndarray],
                    labels: Optional[Mapping[str, Sequence]] = None, *, groups: Optional[Sequence] = None,
                    class_names: Optional[Mapping[str, Sequence[str]]] = None, max_segments: Optional[int] = None,
                    features_metadata: Optional[dict] = None,
                    doc: Optional[np.ndarray] = None) -> "FeatureDataset":
        """Pad per-recording arrays ([n_i, d_a], [n_i, d_t]) into one dataset.

        labels[task]: per-recording values (None / -1 = unlabelled). Integer values are class
        indices when class_names[task] is given; anything else is mapped to sorted class names.
        """
        n = len(recording_ids)
        if not (len(audio) == len(text) == n):
            raise ValueError("recording_ids, audio and text must have the same length")
        d_a = int(audio[0].shape[-1]) if n else 0
        d_t = int(text[0].shape[-1]) if n else 0
        keep = []
        for i in range(n):
            if len(audio[i]) != len(text[i]):
                raise ValueError(f"{recording_ids[i]}: {len(audio[i])} audio vs {len(text[i])} text segments")
            keep.append(subsample_positions(len(audio[i]), max_segments))
        L = max([len(k) for k in keep] + [1])
        A = np.zeros((n, L, d_a), np.float32)
        T = np.zeros((n, L, d_t), np.float32)
        M = np.zeros((n, L), bool)
        for i, k in enumerate(keep):
            A[i, : len(k)] = np.asarray(audio[i], np.float32)[k]
            T[i, : len(k)] = np.asarray(text[i], np.float32)[k]
            M[i, : len(k)] = True
        ds = cls(list(map(str, recording_ids)), torch.from_numpy(A), torch.from_numpy(T), torch.from_numpy(M),
                 groups=None if groups is None else np.asarray([str(g) for g in groups]),
                 features_metadata=dict(features_metadata or {}),
                 doc=None if doc is None else torch.as_tensor(np.asarray(doc, np.float32)).reshape(n, -1))
        for task, values in (labels or {}).items():
            ds.set_labels(task, list(values), (class_names or {}).get(task))
        return ds

    def set_labels(self, task: str, values: Sequence, class_names: Optional[Sequence[str]] = None) -> None:
        """Attach a task: values aligned with recording_ids (None = no label)."""
        vals = list(values)
        if class_names is not None and all(v is None or isinstance(v, (int, np.integer)) for v in vals):
            codes = np.asarray([-1 if v is None else int(v) for v in vals], np.int64)
            if codes.max(initial=-1) >= len(class_names):
                raise InputError(f"task {task!r}: class index {codes.max()} >= {len(class_names)} classes")
            self.labels[task] = codes
            self.class_names[task] = [str(c) for c in class_names]
            return
        strs, numeric = _label_strings(vals)
        present = sorted({s for s in strs if s is not None}, key=(lambda s: float(s)) if numeric else None)
        if class_names is not None:
            names = [str(c) for c in class_names]
            unknown = sorted(set(present) - set(names))
            if unknown:
                raise InputError(f"task {task!r}: label value(s) {', '.join(map(repr, unknown[:5]))} "
                                 f"not among the recipe's classes {names}")
        else:
            names = present
        index = {c: i for i, c in enumerate(names)}
        self.labels[task] = np.asarray([-1 if s is None else index[s] for s in strs], np.int64)
        self.class_names[task] = names

    @classmethod
    def from_parquet(cls, features: str | Path, labels: str | Path | None = None, *,
                     tasks: Mapping[str, str] | Sequence[str] | None = None, id_column: str = "recording_id",
                     group_column: Optional[str] = None, max_segments: Optional[int] = None,
                     class_names: Optional[Mapping[str, Sequence[str]]] = None,
                     only_labelled: bool = True) -> "FeatureDataset":
        """Load a features Parquet file/directory and a labels table (CSV/Parquet) once.

        tasks: task names (= label columns) or {task: column}; None = every label column except
        the id and group columns. only_labelled drops recordings without any task label.
        """
        label_cols: dict[str, list] = {}
        task_map: dict[str, str] = {}
        rec_filter = None
        if labels is not None:
            label_cols = read_labels(labels, id_column)
            if tasks is None:
                task_map = {c: c for c in label_cols if c not in (id_column, group_column)}
            elif isinstance(tasks, Mapping):
                task_map = dict(tasks)
            else:
                task_map = {t: t for t in tasks}
            for t, col in task_map.items():
                if col not in label_cols:
                    raise InputError(f"{labels}: no column {col!r} for task {t!r} "
                                     f"(columns: {', '.join(label_cols)})")
            if group_column and group_column not in label_cols:
                raise InputError(f"{labels}: no group column {group_column!r} (columns: {', '.join(label_cols)})")
            if only_labelled:
                rec_filter = [r for r in label_cols[id_column] if r is not None]
        ids, audio, text, _seg, meta = load_features(features, rec_filter)
        if len(ids) == 0:
            raise InputError(f"{features}: no feature rows" + (f" for the recordings in {labels}" if labels else ""))
        bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
        rec_ids = [ids[b] for b in bounds[:-1]]
        a_list = [audio[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        t_list = [text[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        lab_values: dict[str, list] = {}
        groups = None
        if labels is not None:
            row_of = {r: i for i, r in enumerate(label_cols[id_column])}
            missing = [r for r in label_cols[id_column] if r is not None and r not in set(rec_ids)]
            if missing:
                warnings.warn(f"{len(missing)} labelled recording(s) have no features (e.g. {missing[0]!r}); "
                              "they are left out", stacklevel=2)
            for t, col in task_map.items():
                lab_values[t] = [label_cols[col][row_of[r]] if r in row_of else None for r in rec_ids]
            if group_column:
                groups = []
                for r in rec_ids:
                    g = label_cols[group_column][row_of[r]] if r in row_of else None
                    groups.append(r if g is None or str(g).strip() == "" else str(g))
        ds = cls.from_arrays(rec_ids, a_list, t_list, None, groups=groups, max_segments=max_segments,
                             features_metadata=generic_features_metadata(meta),
                             doc=load_doc_stats(features, rec_ids))
        for t, vals in lab_values.items():
            ds.set_labels(t, vals, (class_names or {}).get(t))
        return ds

    # ---- sufficient statistics for per-fold preprocessing --------------------------------------
    def _rec_stats(self, modality: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("rec", modality)
        if key not in self._stats:
            x = self.audio if modality == "audio" else self.text
            w = self.mask.to(x.dtype).unsqueeze(-1)
            xd = x.double() if x.shape[0] * x.shape[1] < 2_000_000 else x
            s = (xd * w).sum(dim=1).double()
            ss = (xd * xd * w).sum(dim=1).double()
            self._stats[key] = (s, ss, self.mask.sum(dim=1).double())
        return self._stats[key]

    def _rows(self, modality: str, idx: np.ndarray) -> torch.Tensor:
        x = self.audio if modality == "audio" else self.text
        t = torch.as_tensor(np.asarray(idx, np.int64))
        return x[t][self.mask[t]]

    def gram(self, modality: str, idx: np.ndarray) -> torch.Tensor:
        """Sum over the valid segments of recordings idx of x x^T ([d, d], float64).

        Uses the cached all-recordings Gram minus the complement when idx covers most rows.
        """
        idx = np.asarray(idx, np.int64)
        if len(idx) * 2 <= self.n:
            r = self._rows(modality, idx).double()
            return r.T @ r
        key = ("gram", modality)
        if key not in self._stats:
            r = self._rows(modality, np.arange(self.n))
            self._stats[key] = (r.T @ r).double()
        rest = np.setdiff1d(np.arange(self.n), idx)
        if len(rest) == 0:
            return self._stats[key].clone()
        r = self._rows(modality, rest).double()
        return self._stats[key] - r.T @ r

    def subset(self, idx: Sequence[int]) -> "FeatureDataset":
        """A new dataset with only the recordings idx (copies the tensors)."""
        t = torch.as_tensor(np.asarray(idx, np.int64))
        return FeatureDataset([self.recording_ids[i] for i in t.tolist()], self.audio[t], self.text[t], self.mask[t],
                              {k: v[t.numpy()] for k, v in self.labels.items()}, dict(self.class_names),
                              None if self.groups is None else self.groups[t.numpy()], dict(self.features_metadata),
                              None if self.doc is None else self.doc[t])


def load_doc_stats(features: str | Path, recording_ids: Sequence[str]) -> Optional[np.ndarray]:
    """[N, k] document-statistics vectors in recording_ids order, from each features file's
    metadata (``doc_stats``, written by `hilbert embed`); None unless every recording has them."""
    from ..embed.doc_stats import DocStats, feature_vector
    from ..parquet_io import read_metadata

    path = Path(features)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    found: dict[str, np.ndarray] = {}
    for f in files:
        meta = read_metadata(f)
        rid, raw = meta.get("recording_id"), meta.get("doc_stats")
        if rid is None or not isinstance(raw, dict):
            return None  # a hand-made or older features set: no per-recording statistics
        found[str(rid)] = feature_vector(DocStats.from_dict(raw))
    if any(r not in found for r in recording_ids):
        return None
    return np.stack([found[r] for r in recording_ids]) if len(recording_ids) else None


def generic_features_metadata(meta: dict) -> dict:
    """A features file's metadata without what is specific to its one recording."""
    per_rec = {"recording_id", "duration_s", "n_segments", "segments_source_hash", "source_path", "input",
               "doc_stats"}
    out = {k: v for k, v in (meta or {}).items() if k not in per_rec}
    if isinstance(out.get("prepare"), dict):
        out["prepare"] = {k: v for k, v in out["prepare"].items() if k not in per_rec}
    return out
