"""`hilbert prepare INPUT --out WORK`: decode, diarize, transcribe -> words + turns tables.

Exit codes:
  0  every recording prepared (or already done with the same options)
  1  the batch ran but some recordings failed: one error row each under WORK/errors/prepare/
  2  bad usage, bad option, or a model that cannot be loaded: nothing was run
  3  broken installation (see `hilbert doctor`)
  4  the disk filled up: what was written is intact; free space and run the same command again
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..engines.options import EngineOpt, JobsOpt, RayAddressOpt, RayConcurrencyOpt, RayNumCpusOpt, RayNumGpusOpt
from . import check_transcripts_dir


def prepare(
    source: Path = typer.Argument(..., help="A directory of recordings (searched recursively), one audio file, or a list file (.txt/.lst) of paths."),
    out: Path = typer.Option(..., "--out", "-o", help="Work directory: writes OUT/prepare/words/, OUT/prepare/turns/, OUT/errors/prepare/ and the manifest OUT/manifest/prepare/."),
    diarization: str = typer.Option("vad-cluster", "--diarization", help="vad-cluster (offline: silero VAD + a speaker encoder + clustering), pyannote, or none (one speaker)."),
    diarization_model: Optional[str] = typer.Option(None, "--diarization-model", help="pyannote pipeline: registry alias, hub id (HF_TOKEN) or local directory (default pyannote-community-1)."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", help="Exact number of speakers, when known (give it for interviews: with the count free, vad-cluster keeps a second speaker only if they hold >= 15 % of the speech)."),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers"),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers"),
    clustering: Optional[str] = typer.Option(None, "--clustering", help="vad-cluster: nap-kmeans (default: emotion directions projected out of the speaker embeddings, k-means; fewer invented speakers on real emotional speech, no voices merged on long recordings; README 'Accuracy on real speech') or tree (average-linkage cut; what vad-cluster did before the choice existed, on Resemblyzer, which it implies)."),
    speaker_encoder: Optional[str] = typer.Option(None, "--speaker-encoder", help="vad-cluster speaker encoder: campplus (CAM++, default) or resemblyzer (GE2E; what vad-cluster used before); README 'Diarization on real speech'."),
    speaker: str = typer.Option("all", "--speaker", help="Target speaker: all, dominant (most speech), participant (the speaker who is not the interviewer; the interviewer asks the questions, or matches --prompts) or a label (SPEAKER_01). Other speakers' words are kept, with is_target false; the words metadata records why (participant_detection)."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="With --speaker participant: a text file of the interview prompts, one per line; the speaker whose words match them best is the interviewer."),
    asr_model: str = typer.Option("whisper-tiny.en", "--asr-model", help="faster-whisper model: registry alias (whisper-tiny.en, whisper-small, whisper-large-v3, ...) or a CTranslate2 directory."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    compute_type: str = typer.Option("auto", "--compute-type", help="CTranslate2 compute type (auto: int8 on CPU, float16 on CUDA)."),
    beam_size: int = typer.Option(5, "--beam-size"),
    language: Optional[str] = typer.Option(None, "--language", help="Language code; default: detected once per recording (multilingual models)."),
    vad_filter: bool = typer.Option(False, "--vad-filter/--no-vad-filter", help="faster-whisper's own VAD inside each ASR window (off by default: the windows already are speech regions)."),
    condition_on_previous_text: bool = typer.Option(False, "--condition-on-previous-text/--no-condition-on-previous-text", help="Off by default: conditioning is the classic cause of hallucinated loops on silence."),
    temperature_fallback: bool = typer.Option(True, "--temperature-fallback/--no-temperature-fallback", help="Re-decode a window at higher temperatures when it looks like a failure (faster-whisper's default)."),
    batch_size: int = typer.Option(8, "--batch-size", help="ASR windows per batch (GPU batched pipeline)."),
    cpu_threads: int = typer.Option(0, "--cpu-threads", help="CPU threads for the models (0: library defaults; 1 is often fastest on a shared CPU)."),
    asr_workers: int = typer.Option(0, "--asr-workers", min=0, help="CPU: ASR windows transcribed at once, one thread each (0: one per usable core; 1: one at a time, least memory)."),
    transcripts: Optional[Path] = typer.Option(None, "--transcripts", help="Directory of existing transcripts named like the recordings (.json/.srt/.vtt/.txt), used instead of ASR."),
    sidecars: bool = typer.Option(True, "--sidecars/--no-sidecars", help="Use a transcript next to an audio file (same name, .json/.srt/.vtt/.txt) instead of ASR."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: only shard K (0-based) of N recordings (job arrays); the shards partition the input."),
    low_memory: bool = typer.Option(False, "--low-memory", help="Two passes: diarize every recording, free those models, then transcribe (the models are never in memory together)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo recordings already prepared with the same options."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    engine: EngineOpt = "local",
    jobs: JobsOpt = 1,
    ray_address: RayAddressOpt = None,
    ray_num_cpus: RayNumCpusOpt = None,
    ray_num_gpus: RayNumGpusOpt = None,
    ray_concurrency: RayConcurrencyOpt = None,
) -> None:
    """Turn a directory of recordings into per-recording words and speaker-turns tables.

    Decoding is streamed (any format FFmpeg reads, resampled to 16 kHz mono); long recordings
    never sit whole in memory. Re-runs skip recordings already done with the same options.
    Exit codes: 0 all done, 1 some recordings failed (see OUT/errors/prepare/), 2 bad usage or
    unavailable model, 3 broken installation, 4 disk full (free space, run again).
    OUT/manifest/prepare/part-K-of-N.parquet has one row per file found (ok, no_speech, error,
    ignored); the summary and the exit code are read from it.
    """
    from ..api import run_prepare
    from ..batch import Shard, discover
    from ..console import console, warn
    from ..console import result as say
    from ..engines.options import engine_settings
    from ..prepare import PrepareOptions
    from ..prepare.transcripts import EXTENSIONS

    check_transcripts_dir(transcripts)
    prompt_lines = None
    if prompts is not None:
        from ..prepare.participant import read_prompts

        prompt_lines = read_prompts(prompts)
    opts = PrepareOptions.build(
        diarization=diarization, diarization_model=diarization_model, num_speakers=num_speakers,
        min_speakers=min_speakers, max_speakers=max_speakers, clustering=clustering, speaker_encoder=speaker_encoder, speaker=speaker, prompts=prompt_lines, asr_model=asr_model,
        device=device, compute_type=compute_type, beam_size=beam_size, language=language,
        vad_filter=vad_filter, condition_on_previous_text=condition_on_previous_text,
        temperature_fallback=temperature_fallback,
        batch_size=batch_size, cpu_threads=cpu_threads, asr_workers=asr_workers, transcripts=str(transcripts) if transcripts else None, sidecars=sidecars,
    )
    sh = Shard.parse(shard)
    eng, eng_opts = engine_settings(engine, ray_address, ray_num_cpus, ray_num_gpus, ray_concurrency)
    recordings, skipped = discover(source)
    sidecar_files = [s for s in skipped if s.path.suffix.lower() in EXTENSIONS and s.reason.startswith("not an audio")]
    for s in skipped:
        if s not in sidecar_files:
            warn(f"skipped {s.path}: {s.reason}")
    if sidecar_files:
        console.print(f"{len(sidecar_files)} transcript/other text file(s) next to the audio (used as sidecars when they match a recording)")
    # models are loaded (local engine) before the batch: one that cannot be fails now (exit 2, one line)
    result = run_prepare((recordings, skipped), out, opts, shard=sh, overwrite=overwrite, low_memory=low_memory,
                         engine=eng, engine_options=eng_opts, jobs=jobs, progress=not quiet)
    say(result.summary())  # the summary is the result: stdout, with or without --quiet
    if result.failed:
        warn(f"{len(result.failed)} recording(s) failed: see {out / 'errors' / 'prepare'}")
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
