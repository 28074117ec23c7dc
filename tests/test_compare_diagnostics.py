"""Modality-balance diagnostics (hilbert_cli/evaluation/diagnostics.py)."""

from __future__ import annotations

import json
import math

import numpy as np

from tests.fixtures_compare import tiny_dataset, tiny_model_config, tiny_train_config


def test_latent_diagnostics_known_values():
    from hilbert_cli.evaluation.diagnostics import latent_diagnostics

    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 16))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    d = latent_diagnostics(z @ q * 3.0, rng.standard_normal((40, 16)), z)
    assert abs(d["cka_a_j"] - 1.0) < 1e-5  # orthogonal + isotropic scaling: CKA unchanged
    assert d["cka_t_j"] < 0.6
    assert d["mi_bound"] == math.log(40)
    # the InfoNCE critic is a cosine: a scaled copy is perfectly informative, noise is not
    m = latent_diagnostics(z * 3.0, rng.standard_normal((40, 16)), z)
    assert m["mi_t_j"] < m["mi_a_j"] <= m["mi_bound"] + 1e-6
    assert m["mi_a_j"] > 0.9 * m["mi_bound"]
    assert m["mi_gap"] == m["mi_a_j"] - m["mi_t_j"]
    tiny = latent_diagnostics(z[:2], z[:2], z[:2])
    assert math.isnan(tiny["cka_a_j"])


def test_modality_diagnostics_as_run_cv_hook_and_markdown():
    from hilbert_cli.evaluation.diagnostics import diagnostics_markdown, make_diagnostics_fn, summarise_folds
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.splits import task_splits

    ds = tiny_dataset(n=30)
    tc = tiny_train_config()
    splits = task_splits(ds, "aud", 3, 0)
    sink: list = []
    r = run_cv(ds, "aud", tiny_model_config(variant="hilbert"), tc, splits, diagnostics_fn=make_diagnostics_fn("aud", sink=sink))
    assert len(sink) == 3 and all(set(s) == {"idx", "probs", "probs_audio_only", "probs_text_only"} for s in sink)
    for d in r.diagnostics:
        json.dumps({k: v for k, v in d.items() if k.startswith("diag_")})  # plain numbers
        assert 0.0 <= d["diag_cka_a_j"] <= 1.0 + 1e-6
        assert len(d["diag_gate_mean"]) == 2 and abs(sum(d["diag_gate_mean"]) - 1) < 1e-5
        for k in ("diag_auc_full", "diag_auc_audio_only", "diag_auc_text_only"):
            assert k in d
    s = summarise_folds(r.diagnostics)
    assert np.isfinite(s["cka_a_j"]) and len(s["gate_mean"]) == 2
    md = diagnostics_markdown([r])
    assert md.count("\n") == 2 and "| aud | hilbert |" in md
