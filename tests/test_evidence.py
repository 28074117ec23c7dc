"""`hilbert score --explain`: the evidence table (docs/CONTRACTS.md, "Evidence table").

On the score fixture's real (espeak-ng) speech: the rows agree with the segments table, weights
are sorted and sum to at most 1, a run scored without --explain gains its evidence on the next
run, shards partition it, and the CLI writes it beside --out DIR/. On tiny trained models:
subsampled positions name their true segments, the transfer variants give a note row, and the
masking check (removing the top segments by joint attention moves the score more than removing
as many random segments) holds where the signal sits in a few segments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hilbert_cli.batch import Shard
from hilbert_cli.errors import ConfigError
from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings
from tests.fixtures_score import score_setup  # noqa: F401
from tests.fixtures_train import one_thread, tiny_model, tiny_train  # noqa: F401  (one_thread: fixture)

REPO = Path(__file__).resolve().parents[1]
VIEWS = {"audio", "text", "joint"}


def _opts(setup, work, **kw):
    return ScoreOptions(model_dir=setup.model_dir, work_dir=work, transcripts=setup.transcripts, device="cpu", **kw)


def _table(path):
    return pq.read_table(path).replace_schema_metadata(None)


@pytest.fixture(scope="module")
def explained(score_setup, tmp_path_factory):
    """A run without --explain, then the same work dir with explain: (plain run, explained run, dir)."""
    d = tmp_path_factory.mktemp("explain")
    plain = score_recordings(score_setup.inputs, _opts(score_setup, d / "work"), d / "plain.parquet",
                             show_progress=False)
    run = score_recordings(score_setup.inputs, _opts(score_setup, d / "work", explain=True, explain_top=3),
                           d / "scores.parquet", show_progress=False)
    return plain, run, d


def _segments(work: Path, rid: str) -> pa.Table:
    from hilbert_cli.batch import output_path

    (seg_dir,) = (work / "embed" / "segments").iterdir()  # one segmentation config in this work dir
    return pq.read_table(output_path(seg_dir.parent, seg_dir.name, rid))


def test_evidence_rows_agree_with_the_segments_table(score_setup, explained):
    _, run, d = explained
    assert run.evidence_path == d / "scores.evidence" / "part-0-of-1.parquet"
    ev = pq.read_table(run.evidence_path).to_pandas()
    scores = pq.read_table(run.out_path).to_pandas()
    ok = scores[scores.status == "ok"]
    assert set(ev.recording_id) == set(ok.recording_id) and len(ok) == score_setup.n_good
    assert run.n_evidence_rows == len(ev) and ev.note.isna().all()
    for (rid, task), g in ev.groupby(["recording_id", "task"]):
        seg = _segments(d / "work", rid).to_pandas().set_index("segment_index")
        n_seg = int(ok[(ok.recording_id == rid) & (ok.task == task)].n_segments.iloc[0])
        assert set(g.view) == VIEWS and len(seg) == n_seg
        for view, v in g.groupby("view"):
            v = v.sort_values("rank")
            assert list(v["rank"]) == list(range(1, min(3, n_seg) + 1))
            w = v.weight.to_numpy()
            assert (np.diff(w) <= 0).all() and (w > 0).all() and w.sum() <= 1 + 1e-6
            assert v.segment_index.is_unique
            s = seg.loc[v.segment_index]
            assert list(v.start_s) == list(s.start_s) and list(v.end_s) == list(s.end_s)
            assert list(v.text) == list(s.text) and list(v.speaker) == list(s.speaker)


def test_every_rank_in_the_work_part_sums_to_one(score_setup, explained):
    from hilbert_cli.scoring import evidence

    _, run, d = explained
    rid = sorted(pq.read_table(run.evidence_path).column("recording_id").to_pylist())[0]
    part = pq.read_table(evidence.part_path(d / "work", _key(score_setup), rid)).to_pandas()
    n_seg = _segments(d / "work", rid).num_rows
    for _, v in part.groupby(["task", "view"]):
        assert sorted(v.segment_index) == list(range(n_seg))  # every segment seen (no subsampling here)
        assert v.weight.sum() == pytest.approx(1.0, abs=1e-5)


def _key(setup) -> str:
    from hilbert_cli.scoring.pipeline import load_bundle, model_key

    return model_key(load_bundle(setup.model_dir))


def test_a_run_without_explain_gains_evidence_and_keeps_its_scores(explained):
    plain, run, d = explained
    assert plain.evidence_path is None and not (d / "plain.evidence").exists()
    # the explained run had to run the model again for every good recording (no evidence part yet) ...
    assert len(run.result.done) == len(plain.result.done) and not run.result.skipped
    # ... and wrote the same scores
    assert _table(run.out_path).equals(_table(plain.out_path))


def test_shards_partition_the_evidence(score_setup, explained, tmp_path):
    _, run, d = explained
    parts = []
    for k in range(2):
        r = score_recordings(score_setup.inputs, _opts(score_setup, d / "work", explain=True, explain_top=3),
                             tmp_path / "shards", shard=Shard(k, 2), show_progress=False)
        assert not r.result.done  # every part (score and evidence) is reused
        assert r.evidence_path == tmp_path / "shards" / "_evidence" / f"part-{k}-of-2.parquet"
        parts.append(_table(r.evidence_path))
    merged = pa.concat_tables(parts).sort_by([("recording_id", "ascending")])
    ref = _table(run.evidence_path).sort_by([("recording_id", "ascending")])
    assert merged.num_rows == ref.num_rows and merged.equals(ref)


def test_cli_explain_top_writes_beside_the_out_dir(score_setup, explained, tmp_path):
    _, run, d = explained
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from hilbert_cli.cli import main; main()", "score", str(score_setup.inputs),
           "--model", str(score_setup.model_dir), "--out", f"{out}/", "--work", str(d / "work"),
           "--transcripts", str(score_setup.transcripts), "--device", "cpu", "--quiet", "--explain-top", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr[-2000:]  # the bad recordings' error rows
    path = out / "_evidence" / "part-0-of-1.parquet"
    assert "evidence" in proc.stdout + proc.stderr and path.is_file()  # the summary names it
    assert not [p for p in out.glob("*.parquet") if p.name != "part-0-of-1.parquet"]  # out of the scores' glob
    ev = _table(path)
    ref = _table(run.evidence_path)
    top2 = ref.filter(pa.compute.less_equal(ref.column("rank"), 2))
    assert ev.num_rows == top2.num_rows and ev.equals(top2)


def test_explain_top_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="--explain-top"):
        ScoreOptions(model_dir=tmp_path, work_dir=tmp_path, explain=True, explain_top=0)


# ----------------------------------------------------------------------------- tiny trained models


def _bundle(tmp_path: Path, ds, variant: str, *, n_epochs: int, train_idx=None, max_segments=None, **model_kw):
    from hilbert_cli.training import fit_model
    from hilbert_cli.training.checkpoint import load_model_dir, save_task_model

    task = next(iter(ds.labels))
    idx = np.arange(ds.n) if train_idx is None else train_idx
    fitted = fit_model(ds, task, idx, tiny_model(variant, **model_kw), tiny_train(), n_epochs=n_epochs, device="cpu")
    save_task_model(fitted, tmp_path / "run" / "models" / task, task=task, run_name="tiny", d_audio=ds.d_audio,
                    d_text=ds.d_text, features_metadata={}, max_segments=max_segments)
    return load_model_dir(tmp_path / "run")


def _recording(ds, i: int) -> tuple[np.ndarray, np.ndarray]:
    n = int(ds.lengths[i])
    return ds.audio[i, :n].numpy(), ds.text[i, :n].numpy()


def _segments_table(n: int) -> pa.Table:
    return pa.table({"segment_index": pa.array(range(n), pa.int32()),
                     "start_s": [2.0 * i for i in range(n)], "end_s": [2.0 * i + 1.5 for i in range(n)],
                     "speaker": [f"S{i % 2}" for i in range(n)], "text": [f"words of segment {i}" for i in range(n)]})


@pytest.mark.usefixtures("one_thread")
def test_subsampled_positions_name_their_true_segments(tmp_path):
    from hilbert_cli.scoring.evidence import evidence_rows
    from hilbert_cli.training.data import subsample_positions
    from hilbert_cli.training.synthetic import make_synthetic

    ds = make_synthetic(12, tasks={"y": "audio"}, d_audio=6, d_text=6, min_segments=10, max_segments=10, seed=2)
    bundle = _bundle(tmp_path, ds, "hilbert", n_epochs=1, max_segments=4)
    (p,) = bundle.predict(*_recording(ds, 0))
    keep = subsample_positions(10, 4)
    assert list(p.positions) == list(keep) and len(p.attention["attn_j"]) == 2 * len(keep)
    rows = evidence_rows("r.wav", [p], _segments_table(10), {"y": "hilbert"})
    for view, key in (("audio", "attn_a"), ("text", "attn_t"), ("joint", "attn_j")):
        v = sorted((r for r in rows if r["view"] == view), key=lambda r: r["rank"])
        assert sorted(r["segment_index"] for r in v) == list(keep)  # true indices, not positions 0..3
        w = p.attention[key]
        per_seg = dict(zip(keep, w[:4] + w[4:] if view == "joint" else w))
        assert [r["weight"] for r in v] == pytest.approx([per_seg[r["segment_index"]] for r in v], rel=1e-6)
        assert sum(r["weight"] for r in v) == pytest.approx(1.0, abs=1e-5)
        for r in v:
            s = r["segment_index"]
            assert (r["start_s"], r["end_s"], r["text"]) == (2.0 * s, 2.0 * s + 1.5, f"words of segment {s}")


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("variant", ["transfer", "transfer_moe"])
def test_transfer_variants_give_one_note_row(tmp_path, variant):
    from hilbert_cli.scoring.evidence import evidence_rows, rows_table
    from hilbert_cli.training.synthetic import make_synthetic

    ds = make_synthetic(12, tasks={"y": "audio"}, d_audio=6, d_text=6, min_segments=3, max_segments=5, seed=1)
    (p,) = _bundle(tmp_path, ds, variant, n_epochs=1).predict(*_recording(ds, 0))
    assert p.attention == {} and list(p.positions) == list(range(int(ds.lengths[0])))
    (row,) = rows_table(evidence_rows("r.wav", [p], _segments_table(int(ds.lengths[0])), {"y": variant})).to_pylist()
    assert row["task"] == "y" and row["view"] is None and row["weight"] is None and row["rank"] is None
    assert variant in row["note"] and "no attention" in row["note"]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("variant", ["hilbert", "transfer"])
def test_a_segment_vote_model_names_the_segments_that_voted(tmp_path, variant):
    """view vote: each kept segment's share of the predicted class's vote (the joint sequence's two
    positions of a segment folded into one), summing to 1, named by true segment_index."""
    from hilbert_cli.scoring.evidence import evidence_rows
    from hilbert_cli.training.data import subsample_positions
    from hilbert_cli.training.synthetic import make_synthetic

    ds = make_synthetic(12, tasks={"y": "audio"}, d_audio=6, d_text=6, min_segments=10, max_segments=10, seed=2)
    (p,) = _bundle(tmp_path, ds, variant, n_epochs=1, max_segments=4, segment_vote=True).predict(*_recording(ds, 0))
    keep = subsample_positions(10, 4)
    assert len(p.attention["vote"]) == (2 if variant == "hilbert" else 1) * len(keep)
    v = [r for r in evidence_rows("r.wav", [p], _segments_table(10), {"y": variant}) if r["view"] == "vote"]
    assert sorted(r["segment_index"] for r in v) == list(keep) and all(r["weight"] > 0 for r in v)
    assert sum(r["weight"] for r in v) == pytest.approx(1.0, abs=1e-5)
    assert [r["rank"] for r in sorted(v, key=lambda r: -r["weight"])] == [1, 2, 3, 4]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("view, model_kw", [("joint", {}), ("vote", {"segment_vote": True})])
def test_masking_top_segments_moves_the_score_more_than_random_ones(tmp_path, view, model_kw):
    """The masking check: the signal sits in about 2 of 10-12 segments per recording; on held-out
    recordings, dropping the k = 3 segments with the highest joint attention (or vote share, for a
    segment-vote model) moves p(class 1) more than dropping 3 random ones (averaged over 3 draws),
    averaged over recordings."""
    from hilbert_cli.scoring.evidence import ranked, segment_weights
    from hilbert_cli.training.synthetic import make_synthetic

    ds = make_synthetic(100, tasks={"y": "audio"}, n_classes=2, d_audio=8, d_text=8, min_segments=10, max_segments=12,
                        carrier_fraction=0.2, strength=2.0, seed=0)
    n_train, k = 70, 3
    bundle = _bundle(tmp_path, ds, "hilbert", n_epochs=15, train_idx=np.arange(n_train), **model_kw)
    rng = np.random.default_rng(0)

    def p1(a, t, drop=()):
        keep = np.setdiff1d(np.arange(len(a)), np.asarray(drop, np.int64))
        return float(bundle.predict(a[keep], t[keep])[0].probs[1])

    moved_top, moved_random, correct = [], [], []
    for i in range(n_train, ds.n):
        a, t = _recording(ds, i)
        (p,) = bundle.predict(a, t)
        correct.append(int(np.argmax(p.probs)) == ds.labels["y"][i])
        idx, w = segment_weights(p)[view]
        full = float(p.probs[1])
        moved_top.append(abs(full - p1(a, t, idx[ranked(w)[:k]])))
        moved_random.append(np.mean([abs(full - p1(a, t, rng.choice(len(a), k, replace=False))) for _ in range(3)]))
    top, rand = float(np.mean(moved_top)), float(np.mean(moved_random))
    print(f"masking check: held-out accuracy {np.mean(correct):.2f}; mean |p_full - p_without_top{k}| = {top:.3f}, "
          f"mean |p_full - p_without_random{k}| = {rand:.3f} (ratio {top / rand:.2f}, {len(moved_top)} recordings)")
    assert np.mean(correct) > 0.65  # the model learnt the signal (else the check means nothing)
    assert top > 1.3 * rand, (top, rand)
