"""`hilbert embed` over a work directory: features contract, metadata, cache reuse, resume,
shards, error rows, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from hilbert_cli.embed.options import EmbedOptions
from hilbert_cli.embed.pipeline import Embedder, embed_work_dir, features_dir, read_features
from hilbert_cli.parquet_io import read_metadata, read_table
from hilbert_cli.segment.options import SegmentOptions
from tests.fixtures_embed import (  # noqa: F401
    prepare_meta, tiny_models, tiny_sentence_model, words_table, write_prepared, write_tone_wav,
)

POS = ["I absolutely love my wonderful family and we are so happy together.",
       "Every day is a joy and I feel great about our beautiful home."]
NEG = ["But then my father died and everything became terrible and sad.",
       "I hated the awful hospital, it was horrible and painful."]


def make_work(root: Path, n: int = 3) -> Path:
    work = root / "work"
    for k in range(n):
        rid = f"site{k % 2}/rec {k}"  # nested ids and a space
        sents = (POS + NEG) if k % 2 == 0 else (NEG + POS + POS)
        t = words_table(sents, recording_id=rid, start=0.5 + 0.1 * k)
        dur = float(t.column("end_s")[-1].as_py()) + 1.0
        wav = write_tone_wav(root / "audio" / f"{k}.wav", dur, seed=k, f0=120 + 20 * k)
        write_prepared(work, rid, t, prepare_meta(wav, rid, dur))
    return work


def opts(audio: str, text: str, **kw) -> EmbedOptions:
    return EmbedOptions(audio=audio, text=text, device="cpu",
                        segment=SegmentOptions(emotion="off", min_words=4, min_s=1.0), **kw)


def test_features_contract_and_metadata(tmp_path, tiny_models, tiny_sentence_model):
    work = make_work(tmp_path)
    o = opts(str(tiny_models["hubert"]), str(tiny_sentence_model))
    res = embed_work_dir(work, o, show_progress=False)
    assert len(res.done) == 3 and not res.failed and res.exit_code == 0
    fdir = features_dir(work, o)
    assert fdir.name == "hubert__tiny-st"
    files = sorted(fdir.rglob("*.parquet"))
    assert len(files) == 3
    table = read_features(fdir)
    assert table.schema.field("audio_embedding").type == pa.list_(pa.float32(), 32)
    assert table.schema.field("text_embedding").type == pa.list_(pa.float32(), 24)
    assert table.column_names == ["recording_id", "segment_index", "audio_embedding", "text_embedding"]
    one = read_table(fdir / "site0" / "rec 0.parquet")
    meta = read_metadata(fdir / "site0" / "rec 0.parquet")
    assert meta["stage"] == "embed" and meta["recording_id"] == "site0/rec 0"
    assert meta["audio_model"]["dim"] == 32 and meta["text_model"]["dim"] == 24
    assert meta["embed_options"]["audio"] == o.audio and EmbedOptions.model_validate(meta["embed_options"]) == o
    assert meta["prepare"]["config_hash"] == "prep0" and meta["prepare"]["source_path"].endswith("0.wav")
    assert meta["n_segments"] == one.num_rows > 1
    segs = read_table(next((work / "embed" / "segments").rglob("rec 0.parquet")))
    assert segs.num_rows == one.num_rows
    assert one.column("segment_index").to_pylist() == segs.column("segment_index").to_pylist()
    assert "shift" in segs.column("cut_reason").to_pylist()
    # the in-memory API gives the same vectors as the files
    words = read_table(work / "prepare" / "words" / "site0" / "rec 0.parquet")
    emb = Embedder(o).process(words, read_metadata(work / "prepare" / "words" / "site0" / "rec 0.parquet"))
    a = np.stack(emb.features.column("audio_embedding").to_numpy(zero_copy_only=False))
    b = np.stack(one.column("audio_embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(a, b, atol=1e-5)


class Boom(RuntimeError):
    pass


def test_cache_reused_and_second_backbone_never_recomputes_the_first(tmp_path, tiny_models, tiny_sentence_model, monkeypatch):
    from hilbert_cli.embed import hf_audio, spec, text

    work = make_work(tmp_path, n=2)
    calls = {"hf": 0, "spec": 0, "text": 0}
    for mod, cls, key in ((hf_audio, "HFAudioEncoder", "hf"), (spec, "SpecEncoder", "spec"), (text, "SentenceTextEncoder", "text")):
        orig = getattr(mod, cls).embed

        def counted(self, x, _orig=orig, _key=key):
            calls[_key] += 1
            return _orig(self, x)

        monkeypatch.setattr(getattr(mod, cls), "embed", counted)
    o1 = opts(str(tiny_models["wav2vec2"]), str(tiny_sentence_model))
    assert len(embed_work_dir(work, o1, show_progress=False).done) == 2
    first = dict(calls)
    assert first["hf"] > 0 and first["text"] > 0
    # resume: nothing to do
    r = embed_work_dir(work, o1, show_progress=False)
    assert len(r.skipped) == 2 and calls == first
    # overwrite: features rewritten from the cache, no encoder runs (and none is even loaded)
    monkeypatch.setattr(hf_audio.HFAudioEncoder, "__init__", lambda *a, **k: (_ for _ in ()).throw(Boom("loaded")))
    r = embed_work_dir(work, o1, overwrite=True, show_progress=False)
    assert len(r.done) == 2 and not r.failed and calls == first
    # a second audio backbone: only the new encoder runs; the text vectors come from the cache
    o2 = opts("spec", str(tiny_sentence_model))
    r = embed_work_dir(work, o2, show_progress=False)
    assert len(r.done) == 2 and calls["spec"] > 0 and calls["text"] == first["text"] and calls["hf"] == first["hf"]
    t1, t2 = read_features(features_dir(work, o1)), read_features(features_dir(work, o2))
    np.testing.assert_array_equal(np.stack(t1.column("text_embedding").to_numpy(zero_copy_only=False)),
                                  np.stack(t2.column("text_embedding").to_numpy(zero_copy_only=False)))
    # a changed segmentation is a new cache key: recomputed
    o3 = o2.model_copy(update={"segment": SegmentOptions(emotion="off", min_words=4, min_s=1.0, max_words=10)})
    before = calls["spec"]
    embed_work_dir(work, o3, show_progress=False)
    assert calls["spec"] > before


def test_shards_partition_the_work(tmp_path, tiny_sentence_model):
    work = make_work(tmp_path, n=4)
    o = opts("spec", str(tiny_sentence_model))
    done = []
    for k in range(3):
        done += embed_work_dir(work, o, shard=f"{k}/3", show_progress=False).done
    assert sorted(done) == sorted(f"site{k % 2}/rec {k}" for k in range(4))
    assert len(embed_work_dir(work, o, show_progress=False).skipped) == 4


def test_bad_and_empty_recordings(tmp_path, tiny_sentence_model):
    work = make_work(tmp_path, n=1)
    # audio gone: an error row, the batch goes on
    t = words_table(POS, recording_id="lost")
    write_prepared(work, "lost", t, prepare_meta(tmp_path / "missing.wav", "lost", 10.0))
    # silence: zero words is a valid recording with zero segments
    empty = words_table([], recording_id="quiet")
    wav = write_tone_wav(tmp_path / "audio" / "q.wav", 2.0)
    write_prepared(work, "quiet", empty, prepare_meta(wav, "quiet", 2.0))
    # not Parquet at all
    (work / "prepare" / "words" / "junk.parquet").write_text("not parquet")
    o = opts("spec", str(tiny_sentence_model))
    r = embed_work_dir(work, o, show_progress=False)
    assert sorted(r.done) == ["quiet", "site0/rec 0"]
    assert sorted(f["recording_id"] for f in r.failed) == ["junk", "lost"] and r.exit_code == 1
    assert all(f["message"] for f in r.failed)
    q = read_table(features_dir(work, o) / "quiet.parquet")
    assert q.num_rows == 0 and q.schema.field("audio_embedding").type == pa.list_(pa.float32(), 128)
    assert (work / "errors" / "embed" / "lost.parquet").is_file()


def test_cli(tmp_path, tiny_sentence_model):
    from typer.testing import CliRunner

    from hilbert_cli.cli import app

    work = make_work(tmp_path, n=1)
    runner = CliRunner()
    r = runner.invoke(app, ["embed", str(work), "--audio", "spec", "--text", str(tiny_sentence_model),
                            "--emotion", "off", "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    assert len(list((work / "features").rglob("*.parquet"))) == 1
    r = runner.invoke(app, ["embed", str(work), "--audio", "nope", "--text", str(tiny_sentence_model)])
    assert r.exit_code != 0
    r = runner.invoke(app, ["embed", str(work), "--min-words", "50", "--max-words", "10"])
    assert r.exit_code != 0


def test_features_carry_document_statistics_that_training_reads(tmp_path, tiny_models, tiny_sentence_model):
    """embed records each recording's doc_stats; FeatureDataset reads them back per recording, in order."""
    from hilbert_cli.embed.doc_stats import DocStats, document_stats, feature_vector
    from hilbert_cli.training.data import FeatureDataset

    work = make_work(tmp_path)
    o = opts("spec", str(tiny_sentence_model))
    embed_work_dir(work, o, show_progress=False)
    fdir = features_dir(work, o)
    for k in range(3):
        rid = f"site{k % 2}/rec {k}"
        meta = read_metadata(fdir / f"site{k % 2}" / f"rec {k}.parquet")
        words = read_table(work / "prepare" / "words" / f"site{k % 2}" / f"rec {k}.parquet")
        assert DocStats.from_dict(meta["doc_stats"]) == document_stats(words, meta["n_segments"]), rid
    labels = tmp_path / "labels.csv"
    labels.write_text("recording_id,y\nsite0/rec 0,a\nsite1/rec 1,b\nsite0/rec 2,a\n")
    ds = FeatureDataset.from_parquet(fdir, labels)
    assert ds.doc is not None and ds.doc.shape[0] == 3
    for i, rid in enumerate(ds.recording_ids):
        meta = read_metadata(next(p for p in fdir.rglob("*.parquet") if read_metadata(p)["recording_id"] == rid))
        np.testing.assert_allclose(ds.doc[i].numpy(), feature_vector(DocStats.from_dict(meta["doc_stats"])))
    assert "doc_stats" not in ds.features_metadata  # per recording, not part of the features set's provenance
