"""Features + labels loading, padding, per-fold preprocessing, splits."""

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hilbert_cli.errors import InputError
from hilbert_cli.training.data import FeatureDataset, subsample_positions
from hilbert_cli.training.preprocess import Preprocessor
from hilbert_cli.training.splits import check_grouped, inner_split, make_splits, task_splits
from hilbert_cli.training.synthetic import make_synthetic
from tests.fixtures_train import synthetic_files


def test_parquet_round_trip_pads_once_and_keeps_values(tmp_path):
    feats, labels = synthetic_files(tmp_path, n=30)
    ref = make_synthetic(30, tasks={"a": "audio", "t": "text"}, n_groups=10, d_audio=8, d_text=6,
                         min_segments=3, max_segments=7)
    ds = FeatureDataset.from_parquet(feats, labels, group_column="group")
    assert ds.recording_ids == ref.recording_ids
    assert ds.audio.shape == (30, 7, 8) and ds.text.shape == (30, 7, 6)
    assert torch.equal(ds.mask, ref.mask)
    assert torch.allclose(ds.audio, ref.audio) and torch.allclose(ds.text, ref.text)
    assert set(ds.tasks) == {"a", "t"}
    assert np.array_equal(ds.labels["a"], ref.labels["a"])
    assert list(ds.groups) == list(ref.groups)
    assert ds.features_metadata.get("synthetic") is True


def test_empty_label_cell_excludes_recording_from_that_task_only(tmp_path):
    feats, _ = synthetic_files(tmp_path, n=12)
    labels = tmp_path / "labels.csv"
    rows = ["recording_id,mood,trait,family"]
    for i in range(12):
        mood = "" if i == 3 else ("happy" if i % 2 else "sad")
        trait = "" if i == 5 else str(i % 3)
        rows.append(f"rec{i:04d}.wav,{mood},{trait},f{i // 2}")
    labels.write_text("\n".join(rows) + "\n")
    ds = FeatureDataset.from_parquet(feats, labels, tasks=["mood", "trait"], group_column="family")
    assert ds.n == 12
    assert ds.class_names["mood"] == ["happy", "sad"]
    assert ds.class_names["trait"] == ["0", "1", "2"]
    assert 3 not in ds.task_indices("mood") and 3 in ds.task_indices("trait")
    assert 5 in ds.task_indices("mood") and 5 not in ds.task_indices("trait")
    assert ds.groups[0] == ds.groups[1] == "f0"
    with pytest.raises(InputError, match="not among"):
        FeatureDataset.from_parquet(feats, labels, tasks=["mood"], class_names={"mood": ["happy", "ok"]})
    with pytest.raises(InputError, match="no column 'nope'"):
        FeatureDataset.from_parquet(feats, labels, tasks=["nope"])


def test_directory_of_files_unlabelled_recordings_and_errors(tmp_path):
    feats, labels = synthetic_files(tmp_path / "one", n=10)
    table = pq.read_table(feats)
    d = tmp_path / "dir" / "sub"
    d.mkdir(parents=True)
    for rid in ["rec0000.wav", "rec0001.wav", "rec0002.wav"]:
        pq.write_table(table.filter(pa.compute.equal(table["recording_id"], rid)), d / f"{rid}.parquet")
    ds = FeatureDataset.from_parquet(tmp_path / "dir", None)
    assert ds.recording_ids == ["rec0000.wav", "rec0001.wav", "rec0002.wav"]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds2 = FeatureDataset.from_parquet(tmp_path / "dir", labels)
    assert ds2.n == 3 and any("no features" in str(x.message) for x in w)
    pq.write_table(table.slice(0, 2), d / "dup.parquet")
    with pytest.raises(InputError, match="appears twice"):
        FeatureDataset.from_parquet(tmp_path / "dir", None)
    pq.write_table(table.drop(["text_embedding"]), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="missing column"):
        FeatureDataset.from_parquet(tmp_path / "bad.parquet", None)
    with pytest.raises(InputError, match="not found"):
        FeatureDataset.from_parquet(tmp_path / "nothing", None)


def test_max_segments_subsamples_evenly():
    assert list(subsample_positions(5, None)) == [0, 1, 2, 3, 4]
    assert list(subsample_positions(10, 4)) == [0, 3, 6, 9]
    ds = FeatureDataset.from_arrays(["r"], [np.arange(20, dtype=np.float32)[:, None]],
                                    [np.zeros((20, 2), np.float32)], max_segments=5)
    assert ds.audio[0, :, 0].tolist() == [0.0, 5.0, 10.0, 14.0, 19.0]


def test_preprocessor_uses_only_training_rows_and_matches_direct_computation():
    ds = make_synthetic(40, tasks={"a": "audio"}, d_audio=12, d_text=6, min_segments=2, max_segments=6)
    idx = np.arange(33)  # most rows: exercises the "all minus complement" Gram path
    rows = ds.audio[torch.as_tensor(idx)][ds.mask[torch.as_tensor(idx)]].double()
    prep = Preprocessor.fit(ds, idx, standardize=True, pca=4)
    mean = rows.mean(0)
    std = rows.std(0, unbiased=False)
    assert torch.allclose(prep.tensors["audio_mean"].double(), mean, atol=1e-5)
    assert torch.allclose(1 / prep.tensors["audio_scale"].double(), std, atol=1e-4)
    z = (rows - mean) / std
    evals, evecs = torch.linalg.eigh(z.T @ z / len(z))
    basis = prep.tensors["audio_basis"].double()
    assert torch.allclose(basis.T @ basis, torch.eye(4, dtype=torch.float64), atol=1e-4)
    # the 4-d subspace is the top principal subspace: projections agree up to rotation
    top = evecs[:, -4:]
    assert float((top.T @ basis).pow(2).sum()) == pytest.approx(4.0, abs=1e-2)
    # test recordings changed -> same preprocessing (no leakage from held-out features)
    ds.audio[35:] += 100.0
    ds._stats.clear()
    prep2 = Preprocessor.fit(ds, idx, standardize=True, pca=4)
    assert torch.allclose(prep2.tensors["audio_mean"], prep.tensors["audio_mean"], atol=1e-4)
    a, t = prep.transform(ds.audio, ds.text, ds.mask)
    assert a.shape == (40, ds.audio.shape[1], 4) and t.shape == (40, ds.text.shape[1], 4)
    assert float(a[~ds.mask].abs().sum()) == 0.0


def test_grouped_splits_never_put_a_group_in_train_and_test():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, size=200).astype(str)
    y = rng.integers(0, 3, size=200)
    splits = make_splits(y, groups, n_folds=10, seed=1)
    assert len(splits) == 10
    assert check_grouped(splits, groups)
    covered = np.sort(np.concatenate([te for _, te in splits]))
    assert np.array_equal(covered, np.arange(200))  # every recording tested exactly once
    for tr, te in splits:
        fit, val = inner_split(tr, y, groups, 0.2, seed=0)
        assert not set(groups[fit]) & set(groups[val])
        assert set(fit) | set(val) == set(tr) and not set(fit) & set(val)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, make_splits(y, groups, 10, seed=1)))


def test_ungrouped_splits_are_stratified_and_folds_capped():
    y = np.array([0] * 30 + [1] * 10)
    splits = make_splits(y, None, n_folds=5, seed=0)
    for tr, te in splits:
        assert (y[te] == 1).sum() == 2
    with pytest.warns(UserWarning, match="only 4 possible"):
        make_splits(y, np.repeat(np.arange(4), 10).astype(str), n_folds=25)


def test_task_splits_are_dataset_positions_of_labelled_recordings():
    ds = make_synthetic(30, tasks={"a": "audio"}, n_groups=8, d_audio=4, d_text=4)
    ds.labels["a"][[0, 7]] = -1
    splits = task_splits(ds, "a", n_folds=4)
    tested = np.concatenate([te for _, te in splits])
    assert 0 not in tested and 7 not in tested and len(tested) == 28
    assert check_grouped(splits, ds.groups)
