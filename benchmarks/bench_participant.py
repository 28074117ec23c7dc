"""Participant detection: how often `--speaker dominant` and `--speaker participant` pick the participant.

Two espeak-ng corpora (hilbert_cli/demo/corpus.py), train + held-out recordings each:

    demo             the demo's interviews (the participant speaks about three quarters of the time)
    long-questions   CorpusSpec(long_questions=True): the interviewer gives 2-3 sentences of context
                     before each question and the participant answers in one sentence, so the
                     interviewer speaks most

Each is prepared from its true transcripts (`--transcripts`, true speaker labels: fast, and it
measures the choice, not the diarization), from the same transcripts without punctuation (the
word-order fallback), and - with --asr N - for N recordings per corpus through the demo's own
pipeline (vad-cluster diarization, 2 speakers, whisper-tiny.en). A choice is right when the chosen
speaker is the participant (for ASR: the diarized speaker that overlaps the participant's true
turns most). Prints one row per corpus x source x choice; also how `participant` decided.

    .venv/bin/python benchmarks/bench_participant.py [--out /tmp/bench_participant] [--asr 4]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

CHOICES = ("dominant", "participant")


def strip_punctuation(src: Path, dst: Path) -> Path:
    """A copy of a transcripts tree with the text lower-cased and without punctuation."""
    for f in src.rglob("*.json"):
        doc = json.loads(f.read_text())
        for seg in doc["segments"]:
            seg["text"] = re.sub(r"[^\w\s']", "", seg["text"]).lower()
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc))
    return dst


def truth_label(meta: dict, record: dict, turns) -> str | None:
    """The prepared speaker label of the recording's participant: the true label when the
    transcript names speakers, else the diarized speaker with most overlap with the true turns."""
    if meta["diarization"].get("backend") == "transcript":
        return record["participant"]
    overlap: dict[str, float] = collections.defaultdict(float)
    true = [(t["start_s"], t["end_s"]) for t in record["turns"] if t["speaker"] == record["participant"]]
    for r in turns.to_pylist():
        for a, b in true:
            overlap[r["speaker"]] += max(0.0, min(b, r["end_s"]) - max(a, r["start_s"]))
    return max(overlap, key=overlap.get) if overlap else None


def prepared_choice(work: Path, rec_id: str, record: dict, choice: str, recompute: bool) -> dict:
    """Was the participant chosen? From the words metadata, or (recompute) by applying the
    pipeline's own choose_target to the prepared words and turns tables."""
    from hilbert_cli.parquet_io import read_metadata, read_table
    from hilbert_cli.prepare import turns_path, words_path
    from hilbert_cli.prepare.assign import choose_target

    p = words_path(work, rec_id)
    if not p.is_file():
        return {"recording_id": rec_id, "ok": False, "decided_by": "failed"}
    meta, turns = read_metadata(p), read_table(turns_path(work, rec_id))
    truth = truth_label(meta, record, turns)
    if recompute:
        w = read_table(p).to_pydict()
        tt = [(r["start_s"], r["end_s"], r["speaker"]) for r in turns.to_pylist()]
        _, label, det = choose_target(tt, choice, (w["start_s"], w["end_s"], w["word"], w["speaker"]))
    else:
        label, det = meta["target_speaker"], meta.get("participant_detection")
    return {"recording_id": rec_id, "ok": label == truth, "decided_by": (det or {}).get("decided_by", "-")}


def run_prepare(recs, records: dict, work: Path, choice: str, transcripts: Path | None, asr: bool) -> list[dict]:
    """Prepare with `choice` (transcripts: redone each time, cheap); with ASR, prepare once with
    speaker all (resumable) and apply the choice to the tables."""
    from hilbert_cli.demo.run import prepare_options
    from hilbert_cli.prepare import prepare_recordings

    opts = prepare_options("cpu", transcripts).model_copy(update={"speaker": "all" if asr else choice})
    if not asr:
        opts = opts.model_copy(update={"sidecars": False})
    prepare_recordings(recs, opts, work, show_progress=False, overwrite=not asr)
    return [prepared_choice(work, r.recording_id, records[r.recording_id], choice, asr) for r in recs]


def corpus_rows(name: str, info, out: Path, n_asr: int) -> list[tuple]:
    from hilbert_cli.batch import discover

    doc = json.loads(info.manifest.read_text())
    results = []
    for split, audio_dir in (("train", info.train_dir), ("heldout", info.heldout_dir)):
        records = {r["recording_id"]: r for r in doc["recordings"] if r["split"] == split}
        recs, _ = discover(audio_dir)
        tr = info.transcripts / split
        bare = strip_punctuation(tr, out / f"{name}_bare_transcripts" / split)
        sources = [("true transcripts", tr, recs, False), ("no punctuation", bare, recs, False)]
        if n_asr and split == "heldout":
            sources.append((f"ASR ({n_asr} recordings)", None, recs[:n_asr], True))
        for source, tdir, rs, asr in sources:
            for choice in CHOICES:
                work = out / "work" / name / split / source.split(" ")[0] / ("" if asr else choice)
                results.append((name, source, choice, run_prepare(rs, records, work, choice, tdir, asr)))
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_participant"))
    ap.add_argument("--asr", type=int, default=0, help="also prepare N held-out recordings per corpus with ASR")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from hilbert_cli.demo.corpus import CorpusSpec, build_corpus

    t0 = time.perf_counter()
    base = CorpusSpec(seed=args.seed)
    rows = []
    for name, spec in (("demo", base), ("long-questions", replace(base, long_questions=True))):
        info = build_corpus(args.out / name, spec)
        print(f"{name}: {info.describe()}", file=sys.stderr)
        rows += corpus_rows(name, info, args.out, args.asr)
    merged: dict[tuple, list] = collections.defaultdict(list)
    for name, source, choice, rs in rows:
        merged[(name, source, choice)] += rs
    print(f"{'corpus':<16} {'source':<22} {'choice':<12} {'correct':>9} {'accuracy':>9}  decided by")
    for (name, source, choice), rs in merged.items():
        ok = sum(r["ok"] for r in rs)
        how = collections.Counter(r["decided_by"] for r in rs)
        how_s = ", ".join(f"{k} {v}" for k, v in how.most_common()) if choice == "participant" else ""
        print(f"{name:<16} {source:<22} {choice:<12} {ok:>4}/{len(rs):<4} {ok / max(1, len(rs)):>9.3f}  {how_s}")
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
