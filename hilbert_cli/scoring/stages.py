"""The prepare and embed stages of a score pass, rebuilt from the trained model's metadata.

A trained model records the features it was trained on (TrainedBundle.features_metadata:
audio_model, text_model, embed_options, and the prepare metadata with its options). Scoring
rebuilds exactly those PrepareOptions and EmbedOptions (only settings that do not change the
output - device, batch sizes - and the transcripts source may differ), runs the two stages
through their public APIs (Preparer, Embedder), and reuses their outputs in the work
directory when they exist with the same config hash (also when `hilbert prepare` /
`hilbert embed` made them): nothing already on disk is recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..batch import Recording
from ..errors import ConfigError, InputError
from ..contracts.base import validation_line
from ..contracts.embed import FeaturesMeta
from ..contracts.prepare import PrepareMeta
from ..parquet_io import read_table


#: EmbedOptions fields that name a model (dotted: nested options); "auto" / "off" name none
EMBED_MODEL_FIELDS = ("audio", "text", "segment.emotion")
_NOT_A_MODEL = {"auto", "off"}


def validation_error(source: str, key: str, exc: Exception) -> ConfigError:
    """A pydantic error on options recorded in a model config -> one line naming the file and key."""
    try:
        msg = validation_line(exc, key)  # pydantic
    except Exception:
        msg = f"{key}: {' '.join(str(exc).split())}"
    return ConfigError(f"{source}: {msg} (not valid for this version of hilbert; retrain the model with it)")


def _dotted(obj: Any, name: str) -> Any:
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def check_model_names(prep, emb, *, source: Path, untrusted_root: Path, embed_keys: dict[str, str]) -> None:
    """Every model the trained model's options name must be one a model directory may name.

    Runs before any stage is built, so a tampered config.json (a pyannote config.yaml that
    names os.system, an unknown alias, a hub id) fails once, at load, and nothing is loaded.
    """
    from ..embed.encoders import split_joined
    from ..registry import check_untrusted_reference

    flat = prep.flat()
    named = [(f"features_metadata.prepare.options.{f}", flat[f]) for f in prep.MODEL_FIELDS]
    for f in EMBED_MODEL_FIELDS:
        key, value = embed_keys.get(f, f"features_metadata.embed_options.{f}"), _dotted(emb, f)
        try:  # an `a+b` audio encoder names every part
            parts = split_joined(value) if f == "audio" and isinstance(value, str) else [value]
        except ConfigError as exc:
            raise ConfigError(f"{source}: {key}: {exc}") from None
        named += [(key, part) for part in parts]
    for key, value in named:
        if value is None or value in _NOT_A_MODEL:
            continue
        check_untrusted_reference(value, key=key, source=source, untrusted_root=untrusted_root)


def stage_options(features_metadata: dict, options, *, source: Path | str = "trained model",
                  untrusted_root: Path | None = None) -> tuple[Any, Any]:
    """(PrepareOptions, EmbedOptions) the model was trained with, with this run's runtime settings.

    source: the model's config.json (named in errors); untrusted_root: the model directory,
    whose named models are checked (check_model_names) when given.
    """
    from ..embed.options import EmbedOptions
    from ..prepare.options import PrepareOptions

    fm = FeaturesMeta.from_metadata(features_metadata, source=source, error=ConfigError, prefix="features_metadata")
    prep_raw = dict(fm.prepare.options)
    emb_raw = dict(fm.embed_options)
    embed_key, embed_keys = "features_metadata.embed_options", {}
    if not emb_raw:
        # older / hand-made features: rebuild from the encoder provenance
        a, t = fm.audio_model, fm.text_model
        if a is None or t is None or not a.alias or not t.alias:
            raise ConfigError(f"{source}: features_metadata records no embed_options or encoder aliases; cannot "
                              "rebuild the features the model was trained on")
        emb_raw = {"audio": a.alias, "text": t.alias}
        embed_key = "features_metadata.audio_model/text_model"
        embed_keys = {"audio": "features_metadata.audio_model.alias", "text": "features_metadata.text_model.alias"}
    try:
        prep = PrepareOptions.from_recorded(prep_raw)
    except Exception as exc:
        raise validation_error(str(source), "features_metadata.prepare.options", exc) from None
    try:
        emb = EmbedOptions.model_validate(emb_raw)
    except Exception as exc:
        raise validation_error(str(source), embed_key, exc) from None
    if untrusted_root is not None:
        check_model_names(prep, emb, source=Path(source), untrusted_root=untrusted_root, embed_keys=embed_keys)
    # runtime-only settings are this run's, never the training machine's: its device, the default
    # thread and worker counts (a `--jobs` budget recorded in the words metadata is not carried
    # over), and this input's transcripts
    fresh = PrepareOptions()
    prep_update: dict[str, Any] = {
        "device": options.device, "cpu_threads": fresh.cpu_threads,
        "asr": prep.asr.model_copy(update={"workers": fresh.asr.workers, "batch_size": fresh.asr.batch_size}),
        "transcripts": str(options.transcripts) if options.transcripts else None}
    prep = prep.model_copy(update=prep_update)
    if prep.transcripts is not None:
        prep = PrepareOptions.model_validate(prep.model_dump())  # resolve the path
    emb = emb.model_copy(update={"device": options.device})
    return prep, emb


def prepare_hash(prep) -> str:
    from ..prepare.pipeline import config_hash

    return config_hash(prep)


def embed_hash(emb) -> str:
    from ..batch import options_hash

    return options_hash(emb.output_dict())


def fixed_list_to_numpy(col) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    d = arr.type.list_size if pa.types.is_fixed_size_list(arr.type) else None
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if d is None:
        d = flat.size // n if n else 0
    return flat.reshape(n, d)


class StageRunner:
    """The prepare and embed steps of a score pass for one recording, through the stages
    themselves (PrepareStage, EmbedStage: their paths, resume checks and writes); an output
    already in work_dir with the same config hash is read, never recomputed."""

    def __init__(self, prep_options, embed_options, work_dir: Path):
        from ..embed.pipeline import EmbedStage
        from ..prepare.stage import PrepareStage

        self.prepare_stage = PrepareStage(prep_options, work_dir)
        self.embed_stage = EmbedStage(embed_options, work_dir)
        self.work_dir = Path(work_dir)
        self.computed: dict[str, bool] = {}

    @property
    def preparer(self):
        return self.prepare_stage.preparer

    @property
    def embedder(self):
        return self.embed_stage.embedder

    # -- prepare
    def prepare(self, rec: Recording) -> tuple[pa.Table, PrepareMeta, float | None]:
        """(words table, prepare metadata, duration_s), from the cache (made from this very audio
        file: PrepareStage.is_done) or computed + written."""
        stage = self.prepare_stage
        if stage.is_done(rec):
            path = stage.outputs(rec)["words"]
            try:
                meta, words = PrepareMeta.read(path), read_table(path)
                self.computed["prepare"] = False
                return words, meta, meta.duration_s
            except InputError:
                pass
        prepared = stage.process(rec)
        stage.write(rec, prepared)
        self.computed["prepare"] = True
        meta = PrepareMeta.from_metadata(prepared.metadata)
        # the duration as the written file records it, so a resumed run reports the same value
        return prepared.words, meta, meta.duration_s if meta.duration_s is not None else prepared.duration_s

    # -- embed
    def features_path(self, rid: str) -> Path:
        return self.embed_stage.features_path(rid)

    def embed(self, rec: Recording, words: pa.Table, prep_meta: PrepareMeta | dict) -> tuple[np.ndarray, np.ndarray]:
        """(audio [n, d_a], text [n, d_t]) segment embeddings, from the cache or computed + written."""
        stage = self.embed_stage
        meta = PrepareMeta.from_metadata(prep_meta).model_copy(update={"recording_id": rec.recording_id})
        table = None
        # the same relative name under another input folder is another recording: rec.path decides
        if stage.is_done_for(rec.recording_id, str(meta.config_hash), rec.path):
            try:
                table = read_table(self.features_path(rec.recording_id))
                self.computed["embed"] = False
            except InputError:
                table = None
        if table is None:
            emb = stage.embedder.process(words, meta, work_dir=self.work_dir)
            stage.write(rec, emb)
            table = emb.features
            self.computed["embed"] = True
        table = table.sort_by([("segment_index", "ascending")])
        return (fixed_list_to_numpy(table.column("audio_embedding")),
                fixed_list_to_numpy(table.column("text_embedding")))
