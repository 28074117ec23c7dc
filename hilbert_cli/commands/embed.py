"""`hilbert embed WORK_DIR`: emotion-shift segments + frozen audio/text features per recording.

Exit codes (README): 0 every recording embedded (or already done); 1 the run finished but
some recordings failed (one error row each under WORK_DIR/errors/embed/); 2 bad usage or a
model that cannot be loaded, or no recordings: nothing was run; 4 the disk filled up (what was
written is intact: free space and run again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..embed.options import DEFAULT_AUDIO, DEFAULT_TEXT
from ..engines.options import EngineOpt, JobsOpt, RayAddressOpt, RayConcurrencyOpt, RayNumCpusOpt, RayNumGpusOpt


def embed(
    work_dir: Path = typer.Argument(..., help="Work directory written by `hilbert prepare` (reads prepare/words/)."),
    audio: str = typer.Option(DEFAULT_AUDIO, "--audio", "-a", help="Audio encoder: registry alias (offline: whisperTinyEnc, whisperBaseEnc (multilingual, [multilingual] extra), spec, egemaps; hub: hubLgFT, whisperM, w2v2LgFT, confLgFT, clapLaion), a local model directory, or several joined with + (egemaps+whisperTinyEnc)."),
    text: str = typer.Option(DEFAULT_TEXT, "--text", "-t", help="Text encoder: registry alias (allMiniLM6, nliMPNet, paraTinyBERT, ...) or a local directory."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Audio encoder hidden state to average (0 = before the first layer; default the last)."),
    max_audio_s: Optional[float] = typer.Option(None, "--max-audio-s", help="Chunk segments longer than this for the audio encoder (default: the model's limit, 30 s)."),
    speakers: str = typer.Option("target", "--speakers", help="Segment the target speaker's words (target) or everyone's (all)."),
    min_words: Optional[int] = typer.Option(None, "--min-words", help="Segmentation: fewest words per segment (default 6)."),
    max_words: Optional[int] = typer.Option(None, "--max-words", help="Segmentation: most words per segment (default 32)."),
    min_s: Optional[float] = typer.Option(None, "--min-s", help="Segmentation: shortest segment in seconds (default 2)."),
    max_s: Optional[float] = typer.Option(None, "--max-s", help="Segmentation: longest segment in seconds (default 12)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Segmentation: change score (0-1) worth a cut (default 0.2)."),
    emotion: str = typer.Option("auto", "--emotion", help="Emotion classifier for segmentation: auto (emoDistilRoBERTa when local), off, or an alias/directory."),
    prosody: bool = typer.Option(True, "--prosody/--no-prosody", help="Use pitch and energy from the audio when segmenting."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    batch_size: int = typer.Option(8, "--batch-size", help="Audio segments per forward pass (text uses 64)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: only shard K (0-based) of N recordings (job arrays)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute features already written with the same options (the vector cache is still used)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    engine: EngineOpt = "local",
    jobs: JobsOpt = 1,
    ray_address: RayAddressOpt = None,
    ray_num_cpus: RayNumCpusOpt = None,
    ray_num_gpus: RayNumGpusOpt = None,
    ray_concurrency: RayConcurrencyOpt = None,
) -> None:
    """Cut transcripts where emotion, sentiment, subjectivity, prosody or speaker change, then embed
    each segment with a frozen audio and a frozen text encoder.

    Writes WORK_DIR/features/<audio>__<text>/<recording_id>.parquet (the features contract) and
    the segments tables (with the signals each cut was made on) under WORK_DIR/embed/segments/,
    and WORK_DIR/manifest/embed/part-K-of-N.parquet, one row per prepared recording (the summary
    and the exit code are read from it).
    Vectors are cached per (recording, segmentation, encoder): a second backbone never
    recomputes the first, and a re-run computes nothing.
    """
    from pydantic import ValidationError

    from ..api import run_embed
    from ..batch import Shard
    from ..console import result as say
    from ..console import warn
    from ..contracts.base import validation_line
    from ..devices import pick_device
    from ..engines.options import engine_settings
    from ..errors import ConfigError
    from ..segment.options import SegmentOptions
    from ..embed.options import EmbedOptions

    seg = {k: v for k, v in dict(speakers=speakers, min_words=min_words, max_words=max_words, min_s=min_s,
                                  max_s=max_s, threshold=threshold, emotion=emotion, prosody=prosody).items()
           if v is not None}
    try:
        opts = EmbedOptions(audio=audio, text=text, audio_layer=layer, max_audio_s=max_audio_s,
                            segment=SegmentOptions(**seg), device=device, audio_batch_size=batch_size)
    except ValidationError as exc:
        raise ConfigError(validation_line(exc, default="segmentation options")) from None
    sh = Shard.parse(shard)
    pick_device(device)
    eng, eng_opts = engine_settings(engine, ray_address, ray_num_cpus, ray_num_gpus, ray_concurrency)
    # no recordings, or a model that is not available: one line before anything runs
    result = run_embed(work_dir, opts, shard=sh, overwrite=overwrite, engine=eng, engine_options=eng_opts, jobs=jobs,
                       progress=not quiet)
    # the summary and the paths written are the result: stdout, with or without --quiet
    say(result.summary())
    say(f"features: {result.features_dir}")
    say(f"segments: {result.segments_dir}")
    if result.failed:
        warn(f"{len(result.failed)} recording(s) failed: see {work_dir / 'errors' / 'embed'}")
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
