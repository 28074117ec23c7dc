"""Loss ablation (paper Table 4), weight sweep and the [compare] schema."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_compare import tiny_dataset, tiny_model_config, tiny_train_config


def test_ablation_runs_all_seven_combinations_over_identical_folds():
    from hilbert_cli.evaluation.ablation import ablation_configs, ablation_rows, combo_label, with_without_rows
    from hilbert_cli.evaluation.config import AblationSection
    from hilbert_cli.evaluation.experiment import Experiment as CompareEngine, RunSpec
    from hilbert_cli.training.config import LossConfig

    ds = tiny_dataset()
    engine = CompareEngine({"recipe": ds}, tiny_train_config(), diagnostics=False)
    base = LossConfig(contrastive=0.2, cka=0.0, mi=0.3)  # a 0 in the recipe still gets switched on (0.1)
    configs = ablation_configs(AblationSection(), tiny_model_config(), base)
    combos = [c for c, _, _ in configs]
    assert len(combos) == 7 and len(set(combos)) == 7 and () not in combos
    assert {frozenset(c) for c in combos} == {
        frozenset(s) for s in (["contrastive"], ["cka"], ["mi"], ["contrastive", "cka"], ["contrastive", "mi"],
                               ["cka", "mi"], ["contrastive", "cka", "mi"])}
    results = {}
    for combo, mc, lc in configs:
        assert mc.variant == "hilbert"
        on = {n: getattr(lc, n) for n in ("contrastive", "cka", "mi")}
        assert on == {"contrastive": 0.2 if "contrastive" in combo else 0.0, "cka": 0.1 if "cka" in combo else 0.0,
                      "mi": 0.3 if "mi" in combo else 0.0}
        results[combo] = engine.run(RunSpec("aud", combo_label(combo), "recipe", mc, lc))
    assert len(engine.runs) == 7  # seven distinct cross-validations
    frame = engine.frame("aud")
    for r in results.values():  # identical folds: same test fold for every recording, same splits
        assert np.array_equal(r.fold_of, frame.fold_of)
        assert len(r.cv.fold_aucs) == len(frame.splits) == 3
        assert (r.fold_of >= 0).all() and r.oof.shape == (frame.n, 2)
    # the losses really differ between combinations (the training-loss parts logged per fold)
    parts = {c: {k for d in r.cv.diagnostics for k in d if k in ("train_contrastive", "train_cka", "train_mi")}
             for c, r in results.items()}
    for c, keys in parts.items():
        assert keys == {f"train_{n}" for n in c}
    rows = ablation_rows(results, n_boot=100, level=0.95, seed=0)
    assert len(rows) == 7 and all(np.isfinite(r["auc"]) for r in rows)
    ww = with_without_rows(results, n_boot=100)
    assert [r["loss"] for r in ww] == ["contrastive", "cka", "mi"]
    for r in ww:
        assert r["loss"].replace("contrastive", "con") in r["best_with_combo"].replace("CKA", "cka").replace("MI", "mi")
        assert r["best_with"] == max(x.auc for c, x in results.items() if r["loss"] in c)
    # re-running a configuration reuses the cached run
    again = engine.run(RunSpec("aud", "again", "recipe", configs[-1][1], configs[-1][2]))
    assert again is results[combos[-1]]


def test_sweep_grid_varies_one_weight_and_fixes_the_others():
    from hilbert_cli.evaluation.config import SweepSection
    from hilbert_cli.evaluation.sweep import sweep_configs
    from hilbert_cli.training.config import LossConfig

    base = LossConfig(contrastive=0.1, cka=0.2, mi=0.3)
    cfgs = sweep_configs(SweepSection(), tiny_model_config(), base)
    assert len(cfgs) == 15
    for name, v, mc, lc in cfgs:
        assert mc.variant == "hilbert" and getattr(lc, name) == v
        for other in {"contrastive", "cka", "mi"} - {name}:
            assert getattr(lc, other) == getattr(base, other)
    assert sorted({v for _, v, _, _ in cfgs}) == [0.0, 0.1, 0.3, 1.0, 3.0]


def test_compare_section_errors_name_the_key():
    from hilbert_cli.errors import ConfigError
    from hilbert_cli.evaluation.config import parse_compare

    with pytest.raises(ConfigError, match=r"compare\.sweep\.valuez: unknown key"):
        parse_compare({"sweep": {"valuez": [0, 1]}}, "r.toml")
    with pytest.raises(ConfigError, match="reference"):
        parse_compare({"variants": ["hilbert"], "stats": {"reference": "nope"}}, "r.toml")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_compare({"variants": ["hilbert", {"name": "hilbert", "variant": "transfer"}]}, "r.toml")
    with pytest.raises(ConfigError, match="r.toml"):
        parse_compare({"variants": [{"name": "x", "variant": "hilbert", "model": {"d_modle": 8}}]}, "r.toml")
    sec = parse_compare({"variants": ["transfer", {"name": "CLAP-LAION", "variant": "transfer", "features": "f"}]})
    specs = sec.variant_specs(["hilbert"])
    assert [s.name for s in specs] == ["transfer", "CLAP-LAION"] and str(specs[1].features) == "f"
    assert [s.name for s in parse_compare(None).variant_specs(["transfer", "hilbert"])] == ["transfer", "hilbert"]
