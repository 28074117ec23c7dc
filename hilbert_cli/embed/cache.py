"""Per-encoder cache of segment vectors, keyed by (recording, segmentation config, encoder).

Layout under WORK_DIR/embed/:
    segments/<seg_key>/<recording_id>.parquet            the segments table
    cache/<seg_key>/<encoder_key>/<recording_id>.parquet  segment_index + embedding
seg_key hashes the segmentation options; encoder_key names the encoder and hashes the
options that change its vectors. An entry is valid only for the prepare output it was
computed from (its config_hash is stored and checked) and for the audio file it was made
from (another input folder's file under the same recording id is another recording), so a
re-prepared recording is recomputed, and adding a second backbone never recomputes the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..batch import options_hash, output_path, same_source
from ..errors import InputError
from ..contracts.base import TableMeta
from ..contracts.embed import SEGMENTS_VERSION, SegmentsMeta, VectorsMeta, vectors_schema
from ..parquet_io import read_table

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A readable directory name for an alias or a path (its last component)."""
    base = Path(name).name if ("/" in name or "\\" in name) else name
    return _SAFE.sub("_", base).strip("._") or "model"


def segment_key(segment_options: dict) -> str:
    return "seg-" + options_hash({**segment_options, "segments_version": SEGMENTS_VERSION})[:12]


def encoder_key(name: str, options: dict) -> str:
    return f"{safe_name(name)}-{options_hash({'name': name, **options})[:10]}"


def segments_path(work_dir: Path, seg_key: str, recording_id: str) -> Path:
    return output_path(Path(work_dir) / "embed" / "segments", seg_key, recording_id)


def vectors_path(work_dir: Path, seg_key: str, enc_key: str, recording_id: str) -> Path:
    return output_path(Path(work_dir) / "embed" / "cache" / seg_key, enc_key, recording_id)


def _valid(path: Path, source_hash: str, model: type[TableMeta], audio: str | None):
    """The entry's metadata (as `model`) when it exists and was made from `source_hash` (and
    from the audio file `audio`, where both name one), else None."""
    if not path.is_file():
        return None
    try:
        meta = model.read(path)
    except InputError:
        return None
    if audio and not same_source(meta.source_path, audio):
        return None
    return meta if getattr(meta, "source_hash", None) == source_hash else None


def load_segments(path: Path, source_hash: str, audio: str | None = None) -> pa.Table | None:
    if _valid(path, source_hash, SegmentsMeta, audio) is None:
        return None
    try:
        return read_table(path)
    except InputError:
        return None


def save_segments(path: Path, table: pa.Table, source_hash: str, meta: dict) -> None:
    """`meta`: recording_id, segment_options, signals, prepare_config_hash, source_path (SegmentsMeta)."""
    SegmentsMeta.current(**meta, source_hash=source_hash).write_table(table, path)


def load_vectors(path: Path, source_hash: str, n_segments: int,
                 audio: str | None = None) -> tuple[np.ndarray, dict] | None:
    """(vectors [n, dim] float32, encoder provenance) or None when absent / stale / wrong size."""
    meta = _valid(path, source_hash, VectorsMeta, audio)
    if meta is None:
        return None
    try:
        t = read_table(path)
    except InputError:
        return None
    dim = meta.dim
    if t.num_rows != n_segments:
        return None
    col = t.column("embedding").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False) if t.num_rows else np.zeros(0, np.float32)
    vecs = np.asarray(flat, dtype=np.float32).reshape(t.num_rows, dim)
    order = np.argsort(t.column("segment_index").to_numpy())
    return vecs[order], meta.encoder.to_dict()


def fixed_list(vectors: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    v = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), type=pa.float32()), dim)


def save_vectors(path: Path, vectors: np.ndarray, dim: int, source_hash: str, encoder: dict,
                 audio: str | None = None) -> None:
    n = vectors.shape[0]
    t = pa.Table.from_arrays([pa.array(np.arange(n, dtype=np.int32)), fixed_list(vectors, dim)],
                             schema=vectors_schema(dim))
    VectorsMeta.current(source_hash=source_hash, dim=dim, encoder=encoder, source_path=audio).write_table(t, path)
