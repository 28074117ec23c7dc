"""Done-when: on a task where only the audio x text interaction predicts the label, the report
shows the full model beating both single-modality maskings (audio-only, text-only)."""

from __future__ import annotations

import json

import numpy as np

from tests.fixtures_compare import INTERACTION_RECIPE, write_recipe


def test_full_model_beats_both_maskings_on_interaction_task(tmp_path):
    from hilbert_cli.evaluation.compare import run_compare
    from hilbert_cli.recipes import load_recipe

    path = write_recipe(tmp_path / "inter.toml", body=INTERACTION_RECIPE.format(out=tmp_path / "runs"))
    run = run_compare(load_recipe(path), progress=False)
    res = json.loads((run.run_dir / "compare.json").read_text())
    (row,) = res["tasks"]["inter"]["diagnostics"]
    assert row["auc_full"] > 0.75, row
    assert row["auc_audio_only"] < 0.65 and row["auc_text_only"] < 0.65, row
    assert row["p_full_vs_audio_only"] < 0.01 and row["p_full_vs_text_only"] < 0.01
    assert row["full_beats_both"] is True
    # diagnostics are computed and sane
    assert 0 <= row["cka_a_j"] <= 1 and 0 <= row["cka_t_j"] <= 1
    assert row["mi_a_j"] <= row["mi_bound"] + 1e-6 and row["mi_t_j"] <= row["mi_bound"] + 1e-6
    assert len(row["gate_mean"]) == 8 and abs(sum(row["gate_mean"]) - 1) < 1e-4
    # ... and the report says so
    md = (run.run_dir / "report.md").read_text()
    table3 = md.split("## Table 3")[1].split("##")[0]
    line = next(l for l in table3.splitlines() if l.startswith("| inter | hilbert"))
    assert line.rstrip().endswith("| yes |")
    # the masked predictions are stored next to the full ones
    import pyarrow.parquet as pq

    oof = pq.read_table(run.run_dir / "oof.parquet").to_pylist()
    model = [r for r in oof if r["label"] == "hilbert"]  # the baselines' rows have no masked predictions
    assert len(model) == 200 and {r["label"] for r in oof} == {"hilbert", "linear", "segment-linear", "length-only"}
    assert all(r["probs_audio_only"] is not None for r in model)
    assert np.isfinite(np.asarray([r["probs"] for r in oof], float)).all()
