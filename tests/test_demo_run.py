"""The demo's training step runs recipes/demo.toml (the built-in recipe) on demo features,
and its summary table and held-out metrics come out of a real run."""

from __future__ import annotations

import math

from hilbert_cli.demo.run import heldout_metrics, recipe_path, train_demo
from hilbert_cli.recipes import load_recipe
from tests.fixtures_score import score_setup  # noqa: F401


def test_demo_recipe_is_valid_and_built_in():
    r = load_recipe(recipe_path())
    assert r.name == "demo" and set(r.variants) >= {"hilbert", "transfer"} and r.data.group_column == "participant"
    assert [t.name for t in r.tasks] == ["affect"] and r.tasks[0].classes == ["negative", "neutral", "positive"]
    assert load_recipe("demo").name == "demo"  # found by name, as `hilbert train demo`


def test_train_demo_on_demo_features_then_score_metrics(score_setup, tmp_path):
    from hilbert_cli.embed.pipeline import features_dir
    from hilbert_cli.parquet_io import read_metadata
    from hilbert_cli.embed.options import EmbedOptions

    # the score fixture's training features (6 recordings, 2 participants): 2 grouped folds
    meta = next((score_setup.work_train / "features").rglob("*.parquet"))
    emb = EmbedOptions.model_validate(read_metadata(meta)["embed_options"])
    feats = features_dir(score_setup.work_train, emb)
    run_dir = tmp_path / "demo"
    rows = train_demo(feats, score_setup.corpus.labels, run_dir, folds=2, device="cpu", show_progress=False,
                      max_epochs=3)
    variants = {r["variant"]: r for r in rows}
    assert set(variants) == {"hilbert", "transfer", "linear", "segment-linear", "length-only"}  # the variants and the baselines
    for r in rows:
        assert r["n_folds"] == 2 and r["n"] == 6 and (math.isnan(r["auc_pooled"]) or 0 <= r["auc_pooled"] <= 1)
    assert (run_dir / "models" / "affect" / "config.json").is_file() and (run_dir / "report.md").is_file()
    # a second call reuses the finished run
    mtime = (run_dir / "summary.json").stat().st_mtime_ns
    again = train_demo(feats, score_setup.corpus.labels, run_dir, folds=2, device="cpu", show_progress=False,
                       max_epochs=3)
    assert [(r["variant"], r["n_folds"]) for r in again] == [(r["variant"], r["n_folds"]) for r in rows]
    assert (run_dir / "summary.json").stat().st_mtime_ns == mtime


def test_report_gets_one_evidence_example_from_the_held_out_scores(score_setup, tmp_path):
    """The demo's report.md section: one held-out recording's score and its top 3 joint-view segments
    (times, speaker, text, as in the evidence table), the attention caveat, one copy on a re-run."""
    import pyarrow.parquet as pq

    from hilbert_cli.demo.run import ATTENTION_CAVEAT, EVIDENCE_HEADING, evidence_section, put_report_section
    from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings

    opts = ScoreOptions(model_dir=score_setup.model_dir, work_dir=tmp_path / "work", device="cpu",
                        transcripts=score_setup.transcripts, explain=True)
    run = score_recordings(score_setup.corpus.heldout_dir, opts, tmp_path / "heldout_scores.parquet",
                           show_progress=False)
    assert run.exit_code == 0 and run.evidence_path is not None
    section = evidence_section(run.out_path, run.evidence_path)
    assert section is not None and section.startswith(EVIDENCE_HEADING) and ATTENTION_CAVEAT in section

    ev = [r for r in pq.read_table(run.evidence_path).to_pylist() if r["view"] == "joint"]
    named = [i for i in sorted({r["recording_id"] for r in ev}) if f"`{i}`" in section]
    assert len(named) == 1  # one example recording
    rid = named[0]
    score = next(r for r in pq.read_table(run.out_path).to_pylist() if r["recording_id"] == rid)
    assert f"**{score['label']}**" in section
    # the fixture's model has no calibration map: the section must not call its probabilities calibrated
    assert score["raw_probabilities"] is None and "probabilities, uncalibrated" in section
    joint = sorted((r for r in ev if r["recording_id"] == rid), key=lambda r: r["rank"])
    most = max(sum(r["recording_id"] == i for r in ev) for i in {r["recording_id"] for r in ev})
    assert min(len(joint), 3) == min(most, 3)  # a recording with 3 segments to show, when there is one
    top = joint[:3]
    table = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| rank")]
    assert len(table) == len(top) > 0
    for line, r in zip(table, top):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[:4] == [str(r["rank"]), f"{r['start_s']:.1f}-{r['end_s']:.1f}", r["speaker"], f"{r['weight']:.3f}"]
        assert cells[4] == " ".join(r["text"].split())[:160]

    report = tmp_path / "report.md"
    report.write_text("# demo\n\n## Calibration of the scores\n\nECE table\n")
    put_report_section(report, EVIDENCE_HEADING, section)
    put_report_section(report, EVIDENCE_HEADING, section)  # a demo re-run: still one copy
    text = report.read_text()
    assert text.count(EVIDENCE_HEADING) == 1 and text.startswith("# demo\n\n## Calibration of the scores\n\nECE table\n")
    assert text.rstrip().endswith(ATTENTION_CAVEAT)
