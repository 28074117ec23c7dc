"""`hilbert prepare` per recording: decode -> VAD + diarization -> ASR (or a transcript) -> words.

Preparer(options) loads each model once, lazily, and reuses it for every recording;
Preparer.process(rec) returns the tables without writing; Preparer.write() writes them
atomically. The batch (resume by config hash, --overwrite, shards, --jobs, one error row per
bad recording, the manifest) is prepare/stage.py (PrepareStage, prepare_recordings); the
two-pass --low-memory run is prepare/low_memory.py.

Output layout (docs/CONTRACTS.md, "Work directory layout"):
    WORK/prepare/words/<recording_id>.parquet   one row per word (written last: the done marker)
    WORK/prepare/turns/<recording_id>.parquet   one row per speaker turn
    WORK/errors/prepare/<recording_id>.parquet  one row per failed recording
    WORK/manifest/prepare/part-K-of-N.parquet   one row per file discovered (docs/CONTRACTS.md, "Manifest")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import batch
from ..audio import SAMPLE_RATE, probe, stream_chunks
from ..batch import Recording
from ..contracts.prepare import PREPARE_FORMAT_VERSION, TURNS_SCHEMA, WORDS_SCHEMA, PrepareMeta
from ..stages import Lazy, lazy
from .assign import UNKNOWN, assign_speakers, choose_target
from .options import PrepareOptions

STAGE = "prepare"


def config_hash(options: PrepareOptions) -> str:
    return batch.options_hash({"stage": STAGE, "schema": PREPARE_FORMAT_VERSION, "options": options.hashed()})


def words_path(work_dir: Path, recording_id: str) -> Path:
    return batch.output_path(Path(work_dir), "prepare/words", recording_id)


def turns_path(work_dir: Path, recording_id: str) -> Path:
    return batch.output_path(Path(work_dir), "prepare/turns", recording_id)


@dataclass
class Stage1:
    """What step 1 (voice activity + diarization) hands to step 2 (words)."""

    info: object  # audio.AudioInfo
    transcript: object  # transcripts.Transcript | None
    duration_s: float
    turns: list
    speech: list
    diar_info: dict
    vad_probs: np.ndarray | None
    models: dict
    timings: dict


@dataclass
class PreparedRecording:
    words: pa.Table
    turns: pa.Table
    metadata: dict
    duration_s: float
    timings: dict = field(default_factory=dict)


class Preparer(Lazy):
    """Loads the models once (lazily: `device`, `diarizer`, `asr`) and prepares one recording at a time."""

    def __init__(self, options: PrepareOptions | None = None) -> None:
        self.options = options or PrepareOptions()
        self.config_hash = config_hash(self.options)

    # ---- models, loaded on first use
    @lazy
    def diarizer(self):
        from .diarize import load_diarizer

        return load_diarizer(self._diarizer_options(), device=self.device)

    def _diarizer_options(self) -> PrepareOptions:
        """vad-cluster on CPU runs its speaker encoder on one torch thread unless cpu_threads
        says otherwise: ASR works on the other cores meanwhile (`process`), and on a shared
        CPU torch's spinning OpenMP threads cost ~6x the CPU time for the same embeddings."""
        o = self.options
        if o.cpu_threads == 0 and o.diarization.backend == "vad-cluster" and self.device == "cpu":
            return o.model_copy(update={"cpu_threads": 1})
        return o

    @lazy
    def asr(self):
        from .asr import load_asr

        return load_asr(self.options, device=self.device)

    def release(self, which: str = "all") -> None:
        """Free models (e.g. between stages when memory is tight); they reload on next use."""
        import gc

        for name, group in (("diarizer", "diarization"), ("asr", "asr")):
            model = self.loaded(name)
            if model is not None and which in ("all", group):
                model.close()
                setattr(self, "_" + name, None)
        gc.collect()

    # ---- one recording
    def process(self, rec: Recording) -> PreparedRecording:
        """Prepare one recording (no writes): voice activity + speakers, then words.

        Where ASR needs only the voice activity (vad-cluster on CPU, no transcript), the speech
        is found first and the speakers are then found on a second thread while this one
        transcribes (torch and CTranslate2 release the GIL): the same tables, both cores busy."""
        first = self._speech_first(rec)
        if first is None:
            return self.finish(rec, self.diarize(rec))
        return self._overlapped(rec, *first)

    def _speech_first(self, rec: Recording) -> tuple | None:
        """(frame probabilities, speech regions, duration, seconds) from the diarizer's own VAD
        with its own settings, or None where diarization and ASR cannot overlap."""
        from .diarize.vad import speech_regions
        from .transcripts import find_transcript

        o = self.options
        if o.diarization.backend != "vad-cluster" or self.device != "cpu":
            return None
        # a transcript first: with one speaker or its own speakers it needs no diarizer at all
        if find_transcript(rec.path, rec.recording_id, o.transcripts, o.sidecars) is not None:
            return None
        if getattr(self.diarizer, "encoder", None) is None:
            return None
        t = time.perf_counter()
        probs, n = self.diarizer.vad.file_probabilities(rec.path, o.chunk_s)
        speech = speech_regions(probs, n, **o.vad.regions_kwargs())
        return probs, speech, n / SAMPLE_RATE, time.perf_counter() - t

    def _overlapped(self, rec: Recording, probs, speech, duration: float, vad_s: float) -> PreparedRecording:
        """Diarize on a worker thread while this thread transcribes the speech; should the
        diarizer's regions differ from ours (never expected), the words are redone from its."""
        from concurrent.futures import ThreadPoolExecutor

        from .asr import asr_windows
        from .diarize.vad import split_long

        o = self.options
        asr = self.asr  # loaded on this thread, before the diarizer's starts
        windows = asr_windows(split_long(speech, probs, o.asr.window_s), o.asr.window_s, duration)
        with ThreadPoolExecutor(1, thread_name_prefix="hilbert-diarize") as pool:
            stage1 = pool.submit(self.diarize, rec)
            t = time.perf_counter()
            words = asr.transcribe(rec.path, windows)
            asr_s = time.perf_counter() - t
            st = stage1.result()
        if list(st.speech) != list(speech):
            return self.finish(rec, st)
        st.timings["vad"] = vad_s
        return self.finish(rec, st, asr_result=(words, asr_s))

    def diarize(self, rec: Recording) -> "Stage1":
        """Step 1: probe, find a transcript, voice activity + diarization (no ASR).

        The result is small (turns, regions, one float per 32 ms frame) and stashed as Parquet, so a
        low-memory run can do step 1 for every recording, free the diarization models, and
        only then load Whisper for step 2 (`finish`)."""
        from .diarize import one_speaker
        from .transcripts import find_transcript, read_transcript

        o = self.options
        t = time.perf_counter()
        info = probe(rec.path)
        tr_path = find_transcript(rec.path, rec.recording_id, o.transcripts, o.sidecars)
        transcript = read_transcript(tr_path) if tr_path else None
        if transcript is not None and transcript.has_times and (transcript.has_speakers or one_speaker(o)):
            # the transcript says who spoke when (or there is one speaker): no diarization
            return self._from_transcript(rec, info, transcript, t)
        diar = self.diarizer.diarize(rec.path)
        return Stage1(info, transcript, diar.duration_s, diar.turns, diar.speech, dict(diar.info), diar.vad_probs,
                      {"diarization": self.diarizer.provenance()}, {"diarize": time.perf_counter() - t})

    def _from_transcript(self, rec: Recording, info, transcript, t0: float) -> "Stage1":
        """Step 1 from a timed transcript: its segments are the turns (one speaker, SPEAKER_00,
        when it names none); only the decoded length is measured."""
        from .diarize.base import merge_turns, union

        duration = sum(c.samples.size for c in stream_chunks(rec.path, self.options.chunk_s)) / SAMPLE_RATE
        turns = merge_turns([(s.start_s, s.end_s, s.speaker or "SPEAKER_00") for s in transcript.segments
                             if s.end_s > s.start_s])
        speech = union([(s, e) for s, e, _ in turns])
        diar_info = {"backend": "transcript", "speakers": "transcript" if transcript.has_speakers else "one"}
        return Stage1(info, transcript, duration, turns, speech, diar_info, None, {},
                      {"decode": time.perf_counter() - t0})

    def finish(self, rec: Recording, st: "Stage1", asr_result: tuple | None = None) -> PreparedRecording:
        """Step 2: words (ASR or the transcript), speaker assignment, target, tables.

        `asr_result`: ((words, info), seconds) already transcribed from st's speech (`process`)."""
        from .asr import asr_windows
        from .diarize.vad import split_long
        from .transcripts import transcript_words

        o = self.options
        info, transcript, duration, turns, speech = st.info, st.transcript, st.duration_s, st.turns, st.speech
        diar_info, models, timings = dict(st.diar_info), dict(st.models), dict(st.timings)
        asr_info: dict = {}
        t = time.perf_counter()
        if transcript is not None:
            raw = transcript_words(transcript, speech, duration)
            w_start = np.array([w[0] for w in raw], dtype=float)
            w_end = np.array([w[1] for w in raw], dtype=float)
            w_text = [w[2] for w in raw]
            if transcript.has_speakers:
                w_spk = [w[3] for w in raw]
                if not transcript.has_times:
                    turns = _turns_from_words(w_start, w_end, w_spk)
            else:
                w_spk = assign_speakers(w_start, w_end, turns)
            n = len(raw)
            prob = [None] * n
            seg = avg = nsp = cr = [None] * n
            source = {"kind": "transcript", "path": str(transcript.path), "format": transcript.format,
                      "has_times": transcript.has_times, "has_speakers": transcript.has_speakers}
            timings["transcript"] = time.perf_counter() - t
        else:
            if asr_result is None:
                probs = st.vad_probs
                regions = split_long(speech, probs, o.asr.window_s) if probs is not None else speech
                windows = asr_windows(regions, o.asr.window_s, duration)
                words, asr_info = self.asr.transcribe(rec.path, windows)
                timings["asr"] = time.perf_counter() - t
            else:
                (words, asr_info), timings["asr"] = asr_result
            models["asr"] = self.asr.provenance()
            w_start = np.array([w.start_s for w in words], dtype=float)
            w_end = np.array([w.end_s for w in words], dtype=float)
            w_text = [w.word for w in words]
            w_spk = assign_speakers(w_start, w_end, turns)
            prob = [w.probability for w in words]
            seg = [w.asr_segment for w in words]
            avg = [w.avg_logprob for w in words]
            nsp = [w.no_speech_prob for w in words]
            cr = [w.compression_ratio for w in words]
            source = {"kind": "asr"}
        t = time.perf_counter()
        targets, target_label, detection = choose_target(turns, o.speaker, (w_start, w_end, w_text, w_spk),
                                                         o.prompts or ())
        n = len(w_text)
        rid = rec.recording_id
        is_t = [True if targets is None else (s in targets) for s in w_spk]
        words_table = pa.Table.from_pydict(
            {
                "recording_id": [rid] * n,
                "word_index": np.arange(n, dtype=np.int32),
                "start_s": w_start,
                "end_s": np.maximum(w_end, w_start),
                "word": w_text,
                "probability": pa.array(prob, type=pa.float32()),
                "speaker": [s if s else UNKNOWN for s in w_spk],
                "is_target": is_t,
                "asr_segment": pa.array(seg, type=pa.int32()),
                "avg_logprob": pa.array(avg, type=pa.float32()),
                "no_speech_prob": pa.array(nsp, type=pa.float32()),
                "compression_ratio": pa.array(cr, type=pa.float32()),
            },
            schema=WORDS_SCHEMA,
        )
        turns = sorted(turns)
        m = len(turns)
        turns_table = pa.Table.from_pydict(
            {
                "recording_id": [rid] * m,
                "turn_index": np.arange(m, dtype=np.int32),
                "speaker": [k for _, _, k in turns],
                "start_s": [float(s) for s, _, _ in turns],
                "end_s": [float(e) for _, e, _ in turns],
                "is_target": [True if targets is None else (k in targets) for _, _, k in turns],
            },
            schema=TURNS_SCHEMA,
        )
        timings["assemble"] = time.perf_counter() - t
        speakers = sorted({k for _, _, k in turns} | set(w_spk))
        metadata = PrepareMeta.current(
            source_path=str(Path(rec.path).resolve()),
            source_fingerprint=batch.source_fingerprint(rec.path),
            recording_id=rid,
            duration_s=round(float(duration), 4),
            input={"sample_rate": info.sample_rate, "channels": info.channels, "codec": info.codec,
                   "container_duration_s": info.duration_s},
            options=self.options.model_dump(mode="json"),
            config_hash=self.config_hash,
            models=models,
            target_speaker=target_label,
            speaker_choice=o.speaker,
            participant_detection=detection,  # --speaker participant: the evidence (else None)
            speakers=[s for s in speakers if s],
            text_source=source,
            language=asr_info.get("language") if asr_info else None,
            diarization=diar_info,
            asr=asr_info,
            timings_s={k: round(v, 3) for k, v in timings.items()},
        ).to_metadata()
        return PreparedRecording(words_table, turns_table, metadata, float(duration), timings)

    def write(self, prepared: PreparedRecording, work_dir: Path) -> None:
        """Turns, then words (the words file marks the recording done); each atomically."""
        meta = PrepareMeta.from_metadata(prepared.metadata)
        meta.for_table("turns").write_table(prepared.turns, turns_path(work_dir, meta.recording_id))
        meta.for_table("words").write_table(prepared.words, words_path(work_dir, meta.recording_id))


def _turns_from_words(starts, ends, speakers) -> list[tuple[float, float, str]]:
    out: list[list] = []
    for s, e, k in zip(starts, ends, speakers):
        k = k or UNKNOWN
        if out and out[-1][2] == k:
            out[-1][1] = max(out[-1][1], float(e))
        else:
            out.append([float(s), float(e), k])
    return [tuple(x) for x in out]
