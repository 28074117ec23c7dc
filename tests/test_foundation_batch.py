"""Batch mechanics: discovery, sharding, resume, error rows, atomic Parquet with metadata."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hilbert_cli import batch
from hilbert_cli.engines.runner import run_batch
from hilbert_cli.errors import ConfigError, InputError
from hilbert_cli.parquet_io import read_metadata, read_table, write_table_atomic


def _tree(root):
    files = ["a.wav", "sub/b.flac", "sub/deeper/c d é.mp3", "notes.txt", ".hidden.wav", ".cache/x.wav"]
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return files


def test_discover_directory(tmp_path):
    _tree(tmp_path)
    recs, skipped = batch.discover(tmp_path)
    assert [r.recording_id for r in recs] == ["a.wav", "sub/b.flac", "sub/deeper/c d é.mp3"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons[".hidden.wav"] == "hidden file" and reasons["x.wav"] == "hidden file"
    assert "not an audio file" in reasons["notes.txt"]


def test_discover_keeps_link_names(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "elsewhere.wav").write_bytes(b"x")
    (data / "linked.wav").symlink_to(tmp_path / "elsewhere.wav")
    (data / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    recs, _ = batch.discover(data)
    assert [r.recording_id for r in recs] == ["dangling.wav", "linked.wav"]


def test_discover_list_file_and_single_file(tmp_path):
    _tree(tmp_path)
    lst = tmp_path / "list.txt"
    lst.write_text("# my recordings\nsub/b.flac\n\n" + str(tmp_path / "a.wav") + "\n")
    recs, _ = batch.discover(lst)
    assert [r.recording_id for r in recs] == ["sub/b.flac", "a.wav"]
    recs, _ = batch.discover(tmp_path / "a.wav")
    assert [r.recording_id for r in recs] == ["a.wav"]
    with pytest.raises(InputError, match="no such file"):
        batch.discover(tmp_path / "missing")


def test_shards_partition_exactly():
    ids = [f"site{i % 7}/rec_{i:04d}.wav" for i in range(500)]
    seen = []
    for k in range(4):
        shard = batch.Shard.parse(f"{k}/4")
        seen += [i for i in ids if shard.contains(i)]
    assert sorted(seen) == sorted(ids)
    sizes = [sum(batch.Shard(k, 4).contains(i) for i in ids) for k in range(4)]
    assert min(sizes) > 80  # roughly balanced
    for bad in ["4/4", "1", "a/b", "-1/3", "0/0"]:
        with pytest.raises(ConfigError):
            batch.Shard.parse(bad)


def _current_umask():
    import os

    m = os.umask(0)
    os.umask(m)
    return m


def test_atomic_write_keeps_metadata_and_old_file_on_failure(tmp_path):
    path = tmp_path / "out" / "x.parquet"
    t = pa.table({"a": [1, 2]})
    write_table_atomic(t, path, {"stage": "test", "config_hash": "abc"})
    assert path.stat().st_mode & 0o777 == 0o666 & ~_current_umask()  # not mkstemp's 0600
    meta = read_metadata(path)
    assert meta["stage"] == "test" and meta["config_hash"] == "abc" and "tool_version" in meta

    with pytest.raises(Exception):
        write_table_atomic("not a table", path, {"stage": "bad"})  # type: ignore[arg-type]
    assert read_table(path).column("a").to_pylist() == [1, 2]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_run_batch_isolates_failures_and_resumes(tmp_path):
    recs = [batch.Recording(f"r{i}.wav", tmp_path / f"r{i}.wav") for i in range(5)]
    calls = []

    def process(rec):
        calls.append(rec.recording_id)
        if rec.recording_id == "r2.wav":
            raise InputError(f"{rec.path}: cannot decode audio (Invalid data)")
        write_table_atomic(pa.table({"x": [1]}), batch.output_path(tmp_path, "out", rec.recording_id),
                           {"config_hash": "h1"})
        return 10.0

    def is_done(rec):
        return batch.is_complete(batch.output_path(tmp_path, "out", rec.recording_id), "h1")

    res = run_batch(recs, stage="unit", out_root=tmp_path, process=process, is_done=is_done, show_progress=False)
    assert res.done == ["r0.wav", "r1.wav", "r3.wav", "r4.wav"]
    assert [f["recording_id"] for f in res.failed] == ["r2.wav"] and res.exit_code == 1
    errors = batch.read_errors(tmp_path)
    assert errors.num_rows == 1
    row = errors.to_pylist()[0]
    assert row["stage"] == "unit" and "r2.wav" in row["message"] and "\n" not in row["message"]

    calls.clear()
    res2 = run_batch(recs, stage="unit", out_root=tmp_path, process=process, is_done=is_done, show_progress=False)
    assert calls == ["r2.wav"]  # only the failed one is retried
    assert len(res2.skipped) == 4

    # a different config hash means not done
    assert not batch.is_complete(batch.output_path(tmp_path, "out", "r0.wav"), "h2")


def test_options_hash_is_order_independent():
    assert batch.options_hash({"a": 1, "b": [1, 2]}) == batch.options_hash({"b": [1, 2], "a": 1})
    assert batch.options_hash({"a": 1}) != batch.options_hash({"a": 2})
