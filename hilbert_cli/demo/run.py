"""`hilbert demo`: the whole method end to end on a synthetic corpus, offline, in minutes.

    corpus   espeak-ng interviews with a known document-level `affect` label (corpus.py)
    prepare  vad-cluster diarization + whisper-tiny.en ASR, participant = the speaker who does not ask
    embed    emotion-shift segments -> whisperTinyEnc (Whisper tiny.en encoder) + allMiniLM6 vectors
    train    recipes/demo.toml: grouped k-fold CV (no participant in two folds) of the
             hilbert and transfer variants, then the final model on all training recordings
    score    the held-out participants' recordings with the final model (`hilbert score --explain`)

Outputs under OUT (default ./demo_out): corpus/, work/, demo/ (the training run: metrics.parquet,
predictions.parquet, report.md, plots, models/affect), heldout_scores.parquet and its evidence
table (heldout_scores.evidence/). report.md gets one held-out recording's evidence (an "Evidence
example" section) beside the calibration the training run reports.
Every step resumes: running the demo again reuses what is already there.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..console import console
from .corpus import GROUP_COLUMN, TASK, CorpusSpec, build_corpus

DEFAULT_OUT = Path("demo_out")
RECIPE_NAME = "demo.toml"
EVIDENCE_HEADING = "## Evidence example"
#: segments of the example recording shown in report.md (the evidence table holds more)
EVIDENCE_TOP = 3
ATTENTION_CAVEAT = ("The weights say where the model's attention pooling looked, not why it scored: attention "
                    "is not causal attribution (docs/CONTRACTS.md, Evidence table).")

#: corpus sizes: "default" is what the README's first command runs; "small" for tests/smoke
SIZES = {
    "default": CorpusSpec(),
    "small": CorpusSpec(n_participants=3, per_class=1, n_heldout_participants=1, heldout_per_class=1,
                        answers=(3, 3), sentences_per_answer=(2, 2)),
}


def demo_model_dir(out: str | os.PathLike = DEFAULT_OUT, transcripts: bool = False) -> Path:
    return Path(out) / ("demo_transcripts" if transcripts else "demo")


def recipe_path() -> Path:
    """recipes/demo.toml (source tree) or the copy installed with the package."""
    here = Path(__file__).resolve().parent.parent
    for p in (here / "data" / "recipes" / RECIPE_NAME, here.parent / "recipes" / RECIPE_NAME):
        if p.is_file():
            return p
    from ..errors import ConfigError

    raise ConfigError(f"built-in recipe {RECIPE_NAME} not found (looked in {here / 'data' / 'recipes'})")


@dataclass
class DemoResult:
    out: Path
    corpus: Any
    run_dir: Path
    scores_path: Path
    cv_table: list[dict] = field(default_factory=list)  # variant, auc mean/sd over folds, pooled OOF
    heldout: dict = field(default_factory=dict)
    work: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    evidence_path: Path | None = None  # the held-out recordings' evidence table (score --explain)


def _step(name: str, timings: dict, t0: float) -> float:
    t = time.perf_counter()
    timings[name] = t - t0
    console.print(f"[green]done[/] {name} in {t - t0:.0f} s")
    return t


def prepare_options(device: str = "auto", transcripts: Path | None = None):
    from ..prepare.options import PrepareOptions

    # the demo interviews have exactly two speakers; the participant is the one who does not ask
    # the questions (as accurate as "dominant" here, and right also where the interviewer talks
    # more: benchmarks/bench_participant.py). Greedy decoding (beam 1) halves the ASR time on a
    # CPU; synthetic speech needs no beam search. No temperature fallback: it re-decodes a failed
    # window by sampling, and CTranslate2 seeds its sampler from std::random_device (per worker
    # thread), so the words, and the demo's tables, would change from run to run.
    return PrepareOptions(diarization="vad-cluster", asr_model="whisper-tiny.en", speaker="participant",
                          num_speakers=2, beam_size=1, temperature_fallback=False, device=device,
                          transcripts=str(transcripts) if transcripts else None)


def embed_options(device: str = "auto"):
    from ..embed.options import EmbedOptions

    return EmbedOptions(audio="whisperTinyEnc", text="allMiniLM6", device=device)  # measured best on EmoDB


def features_dir(work: Path) -> Path:
    from ..embed.pipeline import features_dir as fdir

    return fdir(work, embed_options())


def run_demo(out: str | os.PathLike = DEFAULT_OUT, *, size: str = "default", seed: int = 0,
             device: str = "auto", folds: int | None = None, transcripts: bool = False,
             show_progress: bool = True) -> DemoResult:
    """Run the demo; `transcripts=True` uses the corpus's true transcripts instead of ASR (faster)."""
    from ..batch import discover
    from ..errors import HilbertError

    out = Path(out)
    spec = SIZES[size]
    spec = CorpusSpec(**{**spec.__dict__, "seed": seed})
    timings: dict[str, float] = {}
    t = time.perf_counter()

    console.rule("[bold]1/5 corpus")
    corpus = build_corpus(out / "corpus", spec)
    console.print(f"{corpus.describe()} -> {corpus.root}")
    t = _step("corpus", timings, t)

    from ..prepare import prepare_recordings

    work = out / ("work_transcripts" if transcripts else "work")
    tr_dir = (corpus.transcripts / "train") if transcripts else None
    console.rule("[bold]2/5 prepare (" + ("the corpus's true transcripts" if transcripts else
                                       "vad-cluster diarization, whisper-tiny.en ASR") + ")")
    recs, _ = discover(corpus.train_dir)
    res = prepare_recordings(recs, prepare_options(device, tr_dir), work, show_progress=show_progress)
    console.print(res.summary())
    t = _step("prepare", timings, t)

    console.rule("[bold]3/5 embed (emotion-shift segments, spec + allMiniLM6)")
    from ..embed import embed_work_dir

    res = embed_work_dir(work, embed_options(device), show_progress=show_progress)
    console.print(res.summary())
    t = _step("embed", timings, t)

    console.rule("[bold]4/5 train (recipes/demo.toml: grouped k-fold CV, hilbert vs transfer)")
    run_dir = demo_model_dir(out, transcripts)
    rows = train_demo(features_dir(work), corpus.labels, run_dir, seed=seed, device=device, folds=folds,
                      show_progress=show_progress)
    t = _step("train", timings, t)

    console.rule("[bold]5/5 score the held-out participants (hilbert score --explain)")
    from ..scoring.pipeline import ScoreOptions, score_recordings

    scores_path = out / ("heldout_scores_transcripts.parquet" if transcripts else "heldout_scores.parquet")
    sopts = ScoreOptions(model_dir=run_dir, work_dir=Path(str(work) + "_heldout"), device=device,
                         transcripts=(corpus.transcripts / "heldout") if transcripts else None, explain=True)
    run = score_recordings(corpus.heldout_dir, sopts,
                           scores_path, show_progress=show_progress)
    console.print(run.result.summary())
    if run.result.failed:
        raise HilbertError(f"demo: {len(run.result.failed)} held-out recording(s) failed to score; see {scores_path}")
    section = evidence_section(scores_path, run.evidence_path) if run.evidence_path else None
    if section is not None:
        put_report_section(run_dir / "report.md", EVIDENCE_HEADING, section)
    t = _step("score", timings, t)

    result = DemoResult(out, corpus, run_dir, scores_path, timings=timings, evidence_path=run.evidence_path)
    result.work = work
    result.cv_table = [r for r in rows if r.get("task") == TASK]
    result.heldout = heldout_metrics(scores_path, corpus.heldout_labels)
    return result


def train_demo(features: Path, labels: Path, run_dir: Path, *, seed: int = 0, device: str = "auto",
               folds: int | None = None, show_progress: bool = True, **train_overrides: Any) -> list[dict]:
    """Train recipes/demo.toml on the demo features (data paths, seed and device filled in here).

    Returns the CV summary rows; a finished run in run_dir is reused, not retrained."""
    import json

    from ..recipes import load_recipe
    from ..evaluation.train import train as run_train

    summary = run_dir / "summary.json"
    recipe = load_recipe(recipe_path())
    train = recipe.train.model_copy(update={"seed": seed, "device": device, **train_overrides,
                                           **({"n_folds": folds} if folds is not None else {})})
    data = recipe.data.model_copy(update={"features": Path(features), "labels": Path(labels)})
    recipe = recipe.model_copy(update={"train": train, "data": data, "output_dir": run_dir.parent,
                                       "name": run_dir.name})
    wanted = {"seed": seed, "n_folds": train.n_folds, "features": str(features), **train_overrides}
    if summary.is_file() and (run_dir / "models").is_dir():
        try:
            old = json.loads(summary.read_text())
            if old.get("demo") == wanted:
                console.print(f"reusing the finished run in {run_dir}")
                return old["results"]
        except (ValueError, KeyError):
            pass
    import warnings

    with warnings.catch_warnings():
        # the inner early-stopping split of a 30-recording fold cannot have its requested
        # number of folds; the trainer copes, the note is noise here
        warnings.filterwarnings("ignore", message=r".*folds requested but only.*")
        run = run_train(recipe, out_dir=run_dir, overwrite=True, progress=show_progress)
    doc = json.loads(summary.read_text())
    doc["demo"] = wanted
    summary.write_text(json.dumps(doc, indent=2, default=str))
    return run.table()


def heldout_metrics(scores_path: Path, labels_csv: Path) -> dict:
    """Accuracy and macro one-vs-rest AUC of the final model on the held-out recordings."""
    import numpy as np
    import pyarrow.parquet as pq

    truth = {r["recording_id"]: r[TASK] for r in csv.DictReader(labels_csv.open())}
    df = pq.read_table(scores_path).to_pandas()
    df = df[(df["status"] == "ok") & (df["task"] == TASK)]
    if df.empty:
        return {"n": 0}
    y = [truth[r] for r in df["recording_id"]]
    acc = float(np.mean([a == b for a, b in zip(y, df["label"])]))
    out = {"n": int(len(df)), "accuracy": acc}
    try:
        from sklearn.metrics import roc_auc_score

        classes = list(df["class_names"].iloc[0])
        probs = np.stack(df["probabilities"].to_numpy())
        if len(set(y)) == len(classes):
            out["auc"] = float(roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=classes)) \
                if len(classes) > 2 else float(roc_auc_score([c == classes[1] for c in y], probs[:, 1]))
    except Exception:  # too few held-out recordings for an AUC
        pass
    return out


def evidence_section(scores_path: Path, evidence_path: Path, *, task: str = TASK, top: int = EVIDENCE_TOP) -> str | None:
    """report.md's evidence example: a scored recording with attention weights (the first by id of
    those with at least `top` segments), its score (calibrated where train kept a map) and its
    `top` joint-view segments. None when no recording has weights (a transfer model mean-pools)."""
    from collections import Counter

    import pyarrow.parquet as pq

    ev = [r for r in pq.read_table(evidence_path).to_pylist()
          if r["task"] == task and r["view"] == "joint" and r["rank"] is not None]
    scores = {r["recording_id"]: r for r in pq.read_table(scores_path).to_pylist()
              if r["task"] == task and r["status"] == "ok"}
    n_rows = Counter(r["recording_id"] for r in ev if r["recording_id"] in scores)
    if not n_rows:
        return None
    rid = min(n_rows, key=lambda i: (-min(n_rows[i], top), i))
    score = scores[rid]
    rows = sorted((r for r in ev if r["recording_id"] == rid), key=lambda r: r["rank"])[:top]
    probs = ", ".join(f"{c} {p:.2f}" for c, p in zip(score["class_names"], score["probabilities"]))
    # raw_probabilities is null where train kept no calibration map (train.calibration = auto)
    kind = "probabilities, uncalibrated" if score.get("raw_probabilities") is None else "calibrated probabilities"
    lines = [
        EVIDENCE_HEADING, "",
        f"Held-out recording `{rid}`, task `{task}`: scored **{score['label']}** ({kind}: {probs}). "
        f"Its {len(rows)} segments with the highest joint attention-pooling weight "
        f"(`hilbert score --explain`; all views and ranks in `{evidence_path}`):", "",
        "| rank | time (s) | speaker | weight | text |", "|---:|---|---|---:|---|",
    ]
    lines += [f"| {r['rank']} | {r['start_s']:.1f}-{r['end_s']:.1f} | {_cell(r['speaker'])} | {r['weight']:.3f} "
              f"| {_cell(r['text'])} |" for r in rows]
    return "\n".join(lines + ["", ATTENTION_CAVEAT, ""])


def _cell(value: object, limit: int = 160) -> str:
    """Table-safe markdown cell: one line, no bare pipe, long text cut."""
    text = " ".join(str(value or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def put_report_section(report: Path, heading: str, section: str) -> None:
    """Append `section` to report.md, replacing an earlier copy under the same heading (a demo re-run
    reuses the training run's report: one copy, the latest)."""
    text = report.read_text()
    start = text.find(heading + "\n")
    if start >= 0 and (start == 0 or text[start - 1] == "\n"):
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + (text[end + 1:] if end >= 0 else "")
    from ..parquet_io import atomic_write

    new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    atomic_write(report, lambda tmp: Path(tmp).write_text(new))


def print_result(result: DemoResult) -> None:
    from rich.table import Table

    from ..console import results  # the tables and paths are the demo's result: stdout

    t = Table(title=f"cross-validated AUC, task '{TASK}' ({GROUP_COLUMN}-grouped folds, one-vs-rest macro)")
    for col in ("variant", "recordings", "folds", "AUC mean ± sd over folds", "pooled out-of-fold AUC"):
        t.add_column(col)
    for r in result.cv_table:
        t.add_row(r["variant"], str(r["n"]), str(r["n_folds"]), f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f}",
                  f"{r['auc_pooled']:.3f}")
    results.print(t)
    h = result.heldout
    if h.get("n"):
        auc = f", AUC {h['auc']:.3f}" if "auc" in h else ""
        results.print(f"held-out participants ({h['n']} recordings, final model): accuracy {h['accuracy']:.2f}{auc}")
    total = sum(result.timings.values())
    results.print(f"total {total:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()) + ")")
    results.print(
        "outputs:\n"
        f"  corpus            {result.corpus.root} (labels.csv, manifest.json with true speaker turns)\n"
        f"  prepare + embed   {result.work}\n"
        f"  training run      {result.run_dir} (report.md, metrics.parquet, predictions.parquet, plots, model)\n"
        f"  held-out scores   {result.scores_path}\n"
        + (f"  evidence          {result.evidence_path} (the segments behind each score)\n"
           if result.evidence_path else "") +
        f"score new recordings: hilbert score DIR --model {result.run_dir} --out scores.parquet",
        soft_wrap=True, markup=False,  # paths and the command whole on their lines, whatever the width
    )
