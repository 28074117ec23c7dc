"""`hilbert embed`: prepare words tables -> segments + frozen audio/text features, per recording.

Streaming, one recording at a time: the words table and the segment vectors of one
recording are in memory, audio is read through hilbert_cli.audio.iter_spans in windows of
`window_s` seconds of segment audio. Encoders load once per run, lazily (a run whose
vectors are all cached loads no model).

Outputs under WORK_DIR:
    features/<audio>__<text>/<recording_id>.parquet   recording_id, segment_index,
        audio_embedding fixed_size_list<float32>[d_a], text_embedding fixed_size_list<float32>[d_t]
    embed/segments/<seg_key>/<recording_id>.parquet    the segments table (signals, cut reasons)
    embed/cache/<seg_key>/<encoder_key>/...            per-encoder vectors (see cache.py)
    errors/embed/<recording_id>.parquet                one row per failed recording
    manifest/embed/part-K-of-N.parquet                 one row per recording (docs/CONTRACTS.md, "Manifest")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from .. import manifest
from ..batch import (BatchResult, Recording, Shard, discover_outputs, is_complete, options_hash, output_path,
                     same_source, select_shard)
from ..engines.runner import get_engine
from ..errors import InputError
from ..contracts.embed import FEATURES_VERSION, FeaturesMeta, features_schema
from ..contracts.prepare import PrepareMeta
from ..parquet_io import read_table
from ..stages import Lazy, Stage, lazy
from . import cache
from .doc_stats import document_stats
from .options import EmbedOptions

if TYPE_CHECKING:
    from ..engines.base import Engine

STAGE = "embed"


@dataclass
class EmbeddedRecording:
    segments: pa.Table
    features: pa.Table
    metadata: dict
    computed: dict | None = None  # which parts were computed (False = read from the cache)

    @property
    def recording_id(self) -> str:
        return self.metadata["recording_id"]


def features_name(options: EmbedOptions) -> str:
    return f"{cache.safe_name(options.audio)}__{cache.safe_name(options.text)}"


def features_dir(work_dir: Path, options: EmbedOptions) -> Path:
    return Path(work_dir) / "features" / features_name(options)


def config_hash(options: EmbedOptions, prepare_hash: str | None) -> str:
    return options_hash({"embed": options.output_dict(), "prepare": prepare_hash, "features": FEATURES_VERSION})


class Embedder(Lazy):
    """Loads its segmenter and encoders once, lazily (`device`, `audio_encoder`, `text_encoder`);
    `process` one recording (no writes unless `work_dir` is given, in which case the vector
    cache is read and filled)."""

    def __init__(self, options: EmbedOptions | None = None):
        from ..segment.segmenter import Segmenter

        self.options = options or EmbedOptions()
        self.segmenter = Segmenter(self.options.segment, device="cpu")
        self.seg_key = cache.segment_key(self.options.segment.model_dump())
        self.audio_key = cache.encoder_key(self.options.audio, self.options.audio_opts())
        self.text_key = cache.encoder_key(self.options.text, self.options.text_opts())

    # ---------- lazy models ----------
    @lazy
    def audio_encoder(self):
        from .encoders import load_audio_encoder

        o = self.options
        opts: dict[str, Any] = {"batch_size": o.audio_batch_size, "autocast": o.autocast}
        if o.audio_layer is not None:
            opts["layer"] = o.audio_layer
        if o.max_audio_s is not None:
            opts["max_input_s"] = o.max_audio_s
        return load_audio_encoder(o.audio, device=self.device, **opts)

    @lazy
    def text_encoder(self):
        from .encoders import load_text_encoder

        o = self.options
        return load_text_encoder(o.text, device=self.device, batch_size=o.text_batch_size,
                                 normalize=o.text_normalize, autocast=o.autocast)

    def load(self) -> "Embedder":
        """Load both encoders now (fail fast on a missing model before a batch starts)."""
        self.audio_encoder, self.text_encoder  # noqa: B018
        return self

    # ---------- steps ----------
    def segment(self, words: pa.Table, prepare_meta: dict | PrepareMeta) -> pa.Table:
        prep = PrepareMeta.from_metadata(prepare_meta, source="prepare metadata")
        if not self.segmenter._emotion_loaded:
            self.segmenter.device = self.device  # the emotion classifier runs where the encoders do
        src = prep.source_path
        audio = src if (self.options.segment.prosody and src and words.num_rows) else None
        return self.segmenter.segment(words, audio_path=audio, recording_id=prep.recording_id)

    def embed_audio(self, segments: pa.Table, source_path: str | None) -> np.ndarray:
        enc = self.audio_encoder
        n = segments.num_rows
        out = np.zeros((n, enc.dim), dtype=np.float32)
        if n == 0:
            return out
        if not source_path:
            raise InputError("prepare metadata has no source_path: cannot read the audio")
        from ..audio import SAMPLE_RATE, iter_spans

        spans = list(zip(segments.column("start_s").to_pylist(), segments.column("end_s").to_pylist()))
        budget = self.options.window_s
        idx: list[int] = []
        clips: list[np.ndarray] = []
        held = 0.0
        for i, samples in iter_spans(source_path, spans):
            idx.append(i)
            clips.append(samples)
            held += samples.size / SAMPLE_RATE
            if held >= budget:
                out[idx] = enc.embed(clips)
                idx, clips, held = [], [], 0.0
        if clips:
            out[idx] = enc.embed(clips)
        return out

    def embed_text(self, segments: pa.Table) -> np.ndarray:
        enc = self.text_encoder
        texts = segments.column("text").to_pylist()
        if not texts:
            return np.zeros((0, enc.dim), dtype=np.float32)
        return enc.embed([t or "" for t in texts])

    def _encoder_meta(self, which: str) -> dict:
        from .encoders import encoder_provenance

        enc = self.audio_encoder if which == "audio" else self.text_encoder
        return encoder_provenance(enc)

    # ---------- one recording ----------
    def process(self, words: pa.Table, prepare_meta: dict | PrepareMeta, *,
                work_dir: Path | None = None) -> EmbeddedRecording:
        """`prepare_meta`: the words table's metadata (a dict as read, or PrepareMeta)."""
        prep = PrepareMeta.from_metadata(prepare_meta, source="prepare metadata")
        rid = prep.recording_id
        if rid is None:
            raise InputError("prepare metadata has no recording_id")
        prep_hash = str(prep.config_hash)
        seg_source = options_hash({"prepare": prep_hash, "segment": self.seg_key})
        audio = _audio_file(prep)
        computed = {"segments": True, "audio": True, "text": True}
        segments = None
        seg_path = cache.segments_path(work_dir, self.seg_key, rid) if work_dir else None
        if seg_path is not None:
            segments = cache.load_segments(seg_path, seg_source, audio)
        if segments is None:
            segments = self.segment(words, prep)
            if seg_path is not None:
                cache.save_segments(seg_path, segments, seg_source, {
                    "recording_id": rid, "segment_options": self.options.segment.model_dump(),
                    "signals": self.segmenter.provenance(), "prepare_config_hash": prep_hash,
                    "source_path": audio,
                })
        else:
            computed["segments"] = False
        n = segments.num_rows
        vec_source = options_hash({"prepare": prep_hash, "segment": self.seg_key, "n": n})
        results = {}
        for which, key in (("audio", self.audio_key), ("text", self.text_key)):
            path = cache.vectors_path(work_dir, self.seg_key, key, rid) if work_dir else None
            hit = cache.load_vectors(path, vec_source, n, audio) if path is not None else None
            if hit is not None:
                results[which] = hit
                computed[which] = False
                continue
            if which == "audio":
                vecs = self.embed_audio(segments, prep.source_path)
            else:
                vecs = self.embed_text(segments)
            meta = self._encoder_meta(which)
            if path is not None:
                cache.save_vectors(path, vecs, int(meta["dim"]), vec_source, meta, audio)
            results[which] = (vecs, meta)
        (a_vecs, a_meta), (t_vecs, t_meta) = results["audio"], results["text"]
        d_a, d_t = int(a_meta["dim"]), int(t_meta["dim"])
        features = pa.Table.from_arrays(
            [
                pa.array([rid] * n, type=pa.string()),
                pa.array(np.arange(n, dtype=np.int32)),
                cache.fixed_list(a_vecs, d_a),
                cache.fixed_list(t_vecs, d_t),
            ],
            schema=features_schema(d_a, d_t),
        )
        metadata = FeaturesMeta.current(
            recording_id=rid,
            duration_s=prep.duration_s,
            n_segments=n,
            config_hash=config_hash(self.options, prep_hash),
            audio_model=a_meta,
            text_model=t_meta,
            embed_options=self.options.model_dump(),
            segment_key=self.seg_key,
            segments_source_hash=seg_source,
            segmentation=self.segmenter.provenance(),
            prepare=prep,
            doc_stats=document_stats(words, n).to_dict(),  # docs/CONTRACTS.md "Document statistics"
        ).to_metadata()
        return EmbeddedRecording(segments, features, metadata, computed)

    def write(self, embedded: EmbeddedRecording, work_dir: Path) -> None:
        """Write the segments table (WORK/embed/segments/<seg_key>/) and the features file
        (WORK/features/<audio>__<text>/); atomic, features last (its presence marks the recording done)."""
        meta = FeaturesMeta.from_metadata(embedded.metadata, source="features metadata")
        rid = meta.recording_id
        seg_path = cache.segments_path(work_dir, self.seg_key, rid)
        audio = _audio_file(meta.prepare)
        if cache.load_segments(seg_path, meta.segments_source_hash, audio) is None:  # process() had no work_dir
            cache.save_segments(seg_path, embedded.segments, meta.segments_source_hash, {
                "recording_id": rid, "segment_options": self.options.segment.model_dump(),
                "signals": meta.segmentation, "prepare_config_hash": meta.prepare.config_hash,
                "source_path": audio,
            })
        fdir = features_dir(work_dir, self.options)
        meta.write_table(embedded.features, output_path(fdir.parent, fdir.name, rid))


def _audio_file(prep: PrepareMeta) -> str | None:
    """The audio file a recording's cache entries are made from (resolved), as they record it."""
    return str(Path(prep.source_path).resolve()) if prep.source_path else None


def check_models(options: EmbedOptions) -> None:
    """Raise the one-line ModelUnavailable / ConfigError now if an encoder cannot be had (no weights are loaded)."""
    from .encoders import resolve_encoder

    resolve_encoder(options.audio, "audio")
    resolve_encoder(options.text, "text")


# ---------- batch over a work directory ----------
def discover_prepared(work_dir: Path) -> list[Recording]:
    """Recordings with a prepare words table under WORK_DIR/prepare/words (recording_id from the table)."""
    root = Path(work_dir) / "prepare" / "words"
    if not root.is_dir():
        raise InputError(f"{root}: no prepare output here (run `hilbert prepare ... --out {work_dir}` first)")
    return discover_outputs(root)


class EmbedStage(Stage):
    """One prepared recording (`rec.path`: its words table) -> its segments table, vector cache
    entries and features file (the done marker), as an engine runs it. Picklable: the Embedder
    and its encoders are built once per worker, on first use."""

    name = STAGE
    num_gpus = "auto"  # a model stage: a GPU per Ray actor when the cluster has one

    def __init__(self, options: EmbedOptions, work_dir: Path) -> None:
        self.options = options
        self.out_root = Path(work_dir)
        self.fdir = features_dir(self.out_root, options)

    @lazy
    def embedder(self) -> Embedder:
        return Embedder(self.options)

    def features_path(self, recording_id: str) -> Path:
        return output_path(self.fdir.parent, self.fdir.name, recording_id)

    def outputs(self, rec: Recording) -> dict[str, Path]:
        return {"features": self.features_path(rec.recording_id)}

    def hash_for(self, prepare_hash: str | None) -> str:
        """The features' config hash: these options on words made with `prepare_hash`."""
        return config_hash(self.options, prepare_hash)

    def is_done_for(self, recording_id: str, prepare_hash: str | None,
                    source: str | os.PathLike | None = None) -> bool:
        """Resume: the features file exists with the hash of these options on those words and,
        when `source` is given, was made from that audio file (batch.same_source: words of the
        same options prepared again from another folder's file of this name are embedded anew)."""
        path = self.features_path(recording_id)
        if not is_complete(path, self.hash_for(prepare_hash)):
            return False
        try:
            return source is None or same_source(FeaturesMeta.read(path).prepare.source_path, source)
        except InputError:
            return False

    def is_done(self, rec: Recording) -> bool:
        try:
            prep = PrepareMeta.read(rec.path)
        except InputError:
            return False
        return self.is_done_for(rec.recording_id, prep.config_hash, prep.source_path)

    def process(self, rec: Recording) -> EmbeddedRecording:
        meta = PrepareMeta.read(rec.path)
        if meta.recording_id != rec.recording_id:
            meta = meta.model_copy(update={"recording_id": rec.recording_id})
        return self.embedder.process(read_table(rec.path), meta, work_dir=self.out_root)

    def write(self, rec: Recording, result: EmbeddedRecording) -> float:
        self.embedder.write(result, self.out_root)
        return float(result.metadata.get("duration_s") or 0.0)

    def describe(self, rec: Recording) -> dict:
        return embedded_facts(rec, self.outputs(rec)["features"], self.options)


def embed_work_dir(
    work_dir: Path,
    options: EmbedOptions | None = None,
    *,
    recordings: Iterable[Recording] | None = None,
    overwrite: bool = False,
    shard: Shard | str | None = None,
    show_progress: bool = True,
    engine: "str | Engine" = "local",
    engine_options: Mapping[str, Any] | None = None,
    jobs: int = 1,
) -> BatchResult:
    """Embed every prepared recording under work_dir (resumable, shardable, errors as rows);
    `engine`: "local" / "ray" (with `engine_options`) or an Engine, `jobs`: recordings at once."""
    options = options or EmbedOptions()
    work_dir = Path(work_dir)
    recs = list(recordings) if recordings is not None else discover_prepared(work_dir)
    if shard is not None:
        recs = select_shard(recs, shard if isinstance(shard, Shard) else Shard.parse(shard))
    eng = get_engine(engine, engine_options, jobs=jobs)
    result = eng.run_stage(recs, EmbedStage(options, work_dir), overwrite=overwrite, show_progress=show_progress)
    sh = shard if isinstance(shard, Shard) or shard is None else Shard.parse(shard)
    return manifest.finish(result, manifest.manifest_dir(work_dir, STAGE), shard=sh)


def embedded_facts(rec: Recording, features_path: Path, options: EmbedOptions) -> dict:
    """The manifest's facts of a recording (its words table is rec.path): words and speakers from
    prepare, segments from the features file when it was written with this run's hash."""
    facts = manifest.words_facts(rec.path)
    prep = manifest.footer(rec.path) if facts else None
    chash = config_hash(options, prep[1].config_hash) if prep else None
    facts.update(config_hash=chash, n_segments=None, no_speech=False)
    feats = manifest.footer(features_path) if chash and features_path.is_file() else None
    if feats is not None and feats[1].config_hash == chash:
        facts.update(n_segments=feats[0], no_speech=feats[0] == 0)
    return facts


def read_features(path: Path) -> pa.Table:
    """A features file or directory (all recordings) as one table."""
    import pyarrow.dataset as ds

    return ds.dataset(str(path), format="parquet").to_table()
