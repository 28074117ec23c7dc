"""Combine the shard outputs of `hilbert score --shard K/N` into one table.

    hilbert merge scores/ --out scores.parquet                  # one Parquet file
    hilbert merge scores/ --out scores_ds/ --partition-by task  # hive-partitioned dataset

A directory of shard files is already a dataset (`pd.read_parquet("scores/")`,
`pl.read_parquet("scores/*.parquet")`, DuckDB `read_parquet('scores/*.parquet')`); merging
checks it: every shard from the same model and options, no recording in two shards, all N
shards present when --expect-shards N is given, and writes the rows in recording_id order,
exactly the table one unsharded run writes. The output appears atomically.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, InputError
from ..parquet_io import (METADATA_KEY, current_umask, read_metadata, read_table, temp_prefix, with_metadata,
                          write_table_atomic)

_PART = re.compile(r"(?:^|\.)part-(\d+)-of-(\d+)\.parquet$")


def shard_files(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """Score files named by `sources` (files, or directories holding *.parquet at top level)."""
    files: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))
            if not found:
                raise InputError(f"{p}: no .parquet score files in this directory")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    out, seen = [], set()
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            out.append(f)
    return out


def _check_shards(files: list[Path], metas: list[dict], expect_shards: int | None) -> None:
    keys = {(m.get("model_id"), m.get("config_hash")) for m in metas}
    if len(keys) > 1:
        raise InputError(
            "score files come from different models or options: "
            + "; ".join(f"{f.name}: model {m.get('model_id')}" for f, m in zip(files, metas))
        )
    if expect_shards is not None:
        have = {}
        for f, m in zip(files, metas):
            shard = m.get("shard")
            if shard is None:
                mt = _PART.search(f.name)
                shard = [int(mt.group(1)), int(mt.group(2))] if mt else None
            if shard is None or int(shard[1]) != expect_shards:
                raise InputError(f"{f}: not a shard of {expect_shards} (shard {shard})")
            have[int(shard[0])] = f
        missing = [k for k in range(expect_shards) if k not in have]
        if missing:
            raise InputError(
                f"missing shard(s) {', '.join(map(str, missing))} of {expect_shards}: "
                "run those shards (or wait for them) before merging"
            )


def merged_table(files: list[Path], expect_shards: int | None = None) -> pa.Table:
    if not files:
        raise InputError("nothing to merge: no score files given")
    metas = [read_metadata(f) for f in files]
    _check_shards(files, metas, expect_shards)
    tables = [read_table(f) for f in files]
    schema = tables[0].schema.remove_metadata()
    for f, t in zip(files, tables):
        if t.schema.remove_metadata() != schema:
            raise InputError(f"{f}: its columns differ from {files[0].name}'s (different model or --embeddings)")
    ids_per_file = [set(t.column("recording_id").to_pylist()) for t in tables]
    seen: dict[str, Path] = {}
    for f, ids in zip(files, ids_per_file):
        for rid in ids:
            if rid in seen:
                raise InputError(f"recording '{rid}' is in both {seen[rid].name} and {f.name} (overlapping shards)")
            seen[rid] = f
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
    # recording_id order, keeping each recording's rows (tasks) in their original order
    table = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    order = pc.sort_indices(table, sort_keys=[("recording_id", "ascending"), ("__row", "ascending")])
    table = table.take(order).drop_columns(["__row"])
    meta = dict(metas[0])
    meta.update({"stage": "scores", "shard": None, "n_recordings": len(seen),
                 "merged_from": [f.name for f in files]})
    return with_metadata(table, meta)


def merge_scores(
    sources: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    partition_by: str | None = None,
    expect_shards: int | None = None,
) -> tuple[Path, int]:
    """Merge shard files into `out` (one file, or a hive-partitioned directory). Returns (out, rows)."""
    files = shard_files(sources)
    out = Path(out).expanduser()
    files = [f for f in files if f.resolve() != out.resolve()]
    table = merged_table(files, expect_shards)
    if not partition_by:
        if out.suffix.lower() != ".parquet":
            raise ConfigError(f"--out {out}: expected a .parquet file (or add --partition-by COLUMN for a directory)")
        meta = json.loads(table.schema.metadata[METADATA_KEY])
        write_table_atomic(table.replace_schema_metadata(None), out, meta)
        return out, table.num_rows
    if partition_by not in table.column_names:
        raise ConfigError(f"--partition-by {partition_by}: no such column (try task or status)")
    if out.suffix.lower() == ".parquet":
        raise ConfigError(f"--out {out}: a partitioned dataset is a directory; drop the .parquet suffix")
    import pyarrow.dataset as ds

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the dataset is shared like any output
        part_schema = pa.schema([table.schema.field(partition_by)])
        ds.write_dataset(
            table, tmp, format="parquet", partitioning=ds.partitioning(part_schema, flavor="hive"),
            existing_data_behavior="overwrite_or_ignore", basename_template="part-{i}.parquet",
        )
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, table.num_rows
