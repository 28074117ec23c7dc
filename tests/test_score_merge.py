"""Shard outputs merge into the table one unsharded run writes; bad shard sets fail with one line."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hilbert_cli.batch import Shard
from hilbert_cli.errors import ConfigError, InputError
from hilbert_cli.parquet_io import read_metadata, write_table_atomic
from hilbert_cli.scoring.merge import merge_scores
from hilbert_cli.scoring.pipeline import shard_output_path
from hilbert_cli.contracts.scores import prob_column, rows_to_table, scores_schema

CLASSES = {"affect": ["neg", "pos"], "cohesion": ["1", "2", "3"]}


def _rows(rid):
    rows = []
    for task, names in CLASSES.items():
        probs = [1.0 / len(names)] * len(names)
        row = {"recording_id": rid, "task": task, "status": "ok", "label": names[0], "class_names": names,
               "probabilities": probs, "n_segments": 3, "duration_s": 10.0, "model_id": "m1"}
        row.update({prob_column(c): p for c, p in zip(names, probs)})
        rows.append(row)
    return rows


def _write(path, rids, shard, meta=None):
    schema = scores_schema(CLASSES)
    rows = [r for rid in sorted(rids) for r in _rows(rid)]
    write_table_atomic(rows_to_table(rows, schema), path,
                       {"model_id": "m1", "config_hash": "h", "shard": list(shard), **(meta or {})})


def test_shard_output_paths(tmp_path):
    assert shard_output_path(tmp_path / "s.parquet", Shard()) == tmp_path / "s.parquet"
    assert shard_output_path(tmp_path / "s.parquet", Shard(1, 4)) == tmp_path / "s.part-1-of-4.parquet"
    assert shard_output_path(tmp_path / "scores", Shard(2, 3)) == tmp_path / "scores" / "part-2-of-3.parquet"
    assert shard_output_path(tmp_path / "scores", Shard()) == tmp_path / "scores" / "part-0-of-1.parquet"


def test_merge_shards_equals_unsharded(tmp_path):
    ids = [f"r{i:02d}.wav" for i in range(9)]
    shards = [[r for r in ids if Shard(k, 3).contains(r)] for k in range(3)]
    assert sorted(sum(shards, [])) == ids
    for k, part in enumerate(shards):
        _write(tmp_path / "scores" / f"part-{k}-of-3.parquet", part, (k, 3))
    _write(tmp_path / "single.parquet", ids, (0, 1))
    out, n = merge_scores([tmp_path / "scores"], tmp_path / "merged.parquet", expect_shards=3)
    assert n == 9 * 2
    merged, single = pq.read_table(out), pq.read_table(tmp_path / "single.parquet")
    assert merged.replace_schema_metadata(None).equals(single.replace_schema_metadata(None))
    assert read_metadata(out)["n_recordings"] == 9
    # the shard directory itself is a dataset pandas reads; so is a partitioned merge
    assert len(pd.read_parquet(tmp_path / "scores")) == 18
    ds_dir, _ = merge_scores([tmp_path / "scores"], tmp_path / "by_task", partition_by="task")
    df = pd.read_parquet(ds_dir)
    assert len(df) == 18 and set(df["task"].astype(str)) == set(CLASSES)
    assert sorted(p.name for p in ds_dir.iterdir()) == ["task=affect", "task=cohesion"]


def test_merge_refuses_bad_shard_sets(tmp_path):
    _write(tmp_path / "a" / "part-0-of-2.parquet", ["x.wav", "y.wav"], (0, 2))
    with pytest.raises(InputError, match="missing shard"):
        merge_scores([tmp_path / "a"], tmp_path / "m.parquet", expect_shards=2)
    _write(tmp_path / "a" / "part-1-of-2.parquet", ["y.wav"], (1, 2))
    with pytest.raises(InputError, match="y.wav"):
        merge_scores([tmp_path / "a"], tmp_path / "m.parquet")
    _write(tmp_path / "b" / "part-0-of-1.parquet", ["z.wav"], (0, 1), {"model_id": "other"})
    with pytest.raises(InputError, match="different models"):
        merge_scores([tmp_path / "a" / "part-0-of-2.parquet", tmp_path / "b"], tmp_path / "m.parquet")
    with pytest.raises(ConfigError):
        merge_scores([tmp_path / "b"], tmp_path / "m.csv")
    assert not (tmp_path / "m.parquet").exists()
