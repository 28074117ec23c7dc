"""`hilbert prepare --low-memory`: two passes over the batch, so the diarization models and
Whisper are never in memory together (each still loads once per run).

Pass 1 diarizes every recording and stashes the small result (turns, speech regions, one VAD
probability per 32 ms frame) as Parquet under WORK/prepare/.stage1/; the diarization models are
then freed; pass 2 loads Whisper and turns each stash into the words and turns tables. A stash
is a safe format (JSON state + floats), since a work directory may be handed over; the
transcript is re-read by path.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from .. import manifest
from ..batch import BatchResult, Recording, output_path
from ..engines.runner import run_batch
from ..parquet_io import read_table, write_table_atomic
from .pipeline import STAGE, Preparer, Stage1


def stash_path(work_dir: Path, recording_id: str) -> Path:
    return output_path(Path(work_dir), "prepare/.stage1", recording_id)


def _json_default(o):
    if hasattr(o, "item") and getattr(o, "ndim", 0) == 0:
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def save_stage1(st: Stage1, path: Path) -> None:
    """Stash step 1's result (see the module docstring)."""
    state = {
        "info": asdict(st.info),
        "transcript_path": str(st.transcript.path) if st.transcript is not None else None,
        "duration_s": st.duration_s,
        "turns": [list(t) for t in st.turns],
        "speech": [list(r) for r in st.speech],
        "diar_info": st.diar_info,
        "models": st.models,
        "timings": st.timings,
    }
    vad = None if st.vad_probs is None else np.asarray(st.vad_probs, dtype=np.float32)
    table = pa.table(
        {
            "state": pa.array([json.dumps(state, default=_json_default)], pa.string()),
            "vad_probs": pa.array([vad], pa.list_(pa.float32())),
        }
    )
    write_table_atomic(table, path, {"stage": "prepare/stage1"})


def load_stage1(path: Path) -> Stage1:
    from ..audio import AudioInfo
    from .transcripts import read_transcript

    row = read_table(path).to_pylist()[0]
    state = json.loads(row["state"])
    tp = state["transcript_path"]
    vad = row["vad_probs"]
    return Stage1(
        AudioInfo(**state["info"]),
        read_transcript(Path(tp)) if tp else None,
        state["duration_s"],
        [tuple(t) for t in state["turns"]],
        [tuple(r) for r in state["speech"]],
        state["diar_info"],
        None if vad is None else np.asarray(vad, dtype=np.float32),
        state["models"],
        state["timings"],
    )


class _Pass1:
    """Step 1: diarize and stash the (small) result on disk."""

    def __init__(self, preparer: Preparer, work_dir: Path) -> None:
        self.preparer, self.work_dir = preparer, Path(work_dir)

    def __call__(self, rec: Recording) -> float:
        st = self.preparer.diarize(rec)
        save_stage1(st, stash_path(self.work_dir, rec.recording_id))
        return st.duration_s


class _Pass2(_Pass1):
    """Step 2: words from the stash, write the tables, drop the stash."""

    def __call__(self, rec: Recording) -> float:
        p = stash_path(self.work_dir, rec.recording_id)
        prepared = self.preparer.finish(rec, load_stage1(p))
        self.preparer.write(prepared, self.work_dir)
        p.unlink(missing_ok=True)
        return prepared.duration_s


def two_pass(recs: Sequence[Recording], stage, *, overwrite: bool, show_progress: bool) -> BatchResult:
    """Prepare `recs` in the two passes, with `stage`'s Preparer, resume check and facts
    (a prepare.stage.PrepareStage); one BatchResult with its manifest rows, as one pass gives."""
    t0 = time.perf_counter()
    preparer, work_dir = stage.preparer, stage.out_root
    todo = list(recs) if overwrite else [r for r in recs if not stage.is_done(r)]
    todo_ids = {r.recording_id for r in todo}
    skipped = [r.recording_id for r in recs if r.recording_id not in todo_ids]
    never = lambda r: False  # noqa: E731 - resume was decided above
    r1 = run_batch(todo, stage=STAGE, out_root=work_dir, is_done=never, process=_Pass1(preparer, work_dir),
                   overwrite=True, show_progress=show_progress)
    preparer.release("diarization")
    ok = set(r1.done)
    r2 = run_batch([r for r in todo if r.recording_id in ok], stage=STAGE, out_root=work_dir, is_done=never,
                   process=_Pass2(preparer, work_dir), overwrite=True, show_progress=show_progress)
    preparer.release("asr")
    for r in r1.failed + r2.failed:
        stash_path(work_dir, r["recording_id"]).unlink(missing_ok=True)
    result = BatchResult(STAGE, done=r2.done, skipped=skipped, failed=r1.failed + r2.failed, audio_s=r2.audio_s,
                         seconds={k: r1.seconds.get(k, 0.0) + r2.seconds.get(k, 0.0) for k in {**r1.seconds, **r2.seconds}})
    result.wall_s = time.perf_counter() - t0
    result.rows = manifest.batch_rows(result, recs, describe=stage.describe, config_hash=stage.config_hash)
    return result
