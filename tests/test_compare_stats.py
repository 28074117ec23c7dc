"""Statistics of hilbert_cli/evaluation/stats.py against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hilbert_cli.evaluation import stats
from tests.fixtures_compare import synthetic_predictions


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_macro_auc_matches_sklearn_with_ties(n_classes):
    y, p = synthetic_predictions(150, n_classes, signal=0.8, seed=n_classes)
    p = np.round(p, 2)  # plenty of ties
    p /= p.sum(1, keepdims=True)
    ref = roc_auc_score(y, p[:, 1]) if n_classes == 2 else roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert stats.macro_auc(y, p) == pytest.approx(ref, abs=1e-12)


def test_weighted_auc_equals_auc_of_repeated_rows():
    y, p = synthetic_predictions(60, 3, signal=0.5, seed=1)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=60).astype(float)
    w[:3] = 1  # every class present
    rep = np.repeat(np.arange(60), w.astype(int))
    ref = roc_auc_score(y[rep], p[rep], multi_class="ovr", average="macro")
    got = stats._macro_auc_weighted(y, p, w[None, :])[0]
    assert got == pytest.approx(ref, abs=1e-12)


def _delong_slow(y, s1, s2):
    """DeLong 1988 from the pairwise kernel, no tricks."""
    pos, neg = s1[y == 1], s1[y == 0]
    out = []
    for s in (s1, s2):
        xp, xn = s[y == 1], s[y == 0]
        psi = (xp[:, None] > xn[None, :]) + 0.5 * (xp[:, None] == xn[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    m, n = len(pos), len(neg)
    v10 = np.stack([o[1] for o in out])
    v01 = np.stack([o[2] for o in out])
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return out[0][0] - out[1][0], var


def test_delong_matches_direct_computation():
    from scipy.stats import norm

    y, p1 = synthetic_predictions(120, 2, signal=1.5, seed=3)
    _, p2 = synthetic_predictions(120, 2, signal=0.0, seed=4)
    p2 = 0.5 * p2 + 0.5 * p1  # correlated with p1
    t = stats.delong_test(y, p1, p2)
    diff, var = _delong_slow(y, p1[:, 1], p2[:, 1])
    assert t.diff == pytest.approx(diff, abs=1e-12)
    assert t.p == pytest.approx(2 * norm.sf(abs(diff) / np.sqrt(var)), rel=1e-9)
    assert t.auc_a == pytest.approx(roc_auc_score(y, p1[:, 1]))


@pytest.mark.parametrize("n_classes,groups", [(2, False), (2, True), (4, False), (4, True)])
def test_variant_against_itself_is_never_significant(n_classes, groups):
    y, p = synthetic_predictions(80, n_classes, signal=2.0, seed=7)
    g = np.arange(80) // 3 if groups else None
    for method in ("auto", "bootstrap") + (("delong",) if n_classes == 2 else ()):
        t = stats.paired_test(y, p, p.copy(), groups=g, method=method, n_boot=300)
        assert t.diff == 0.0 and t.p == 1.0 and not t.significant
    folds = np.random.default_rng(0).uniform(0.6, 0.9, size=25)
    ft = stats.corrected_fold_ttest(folds, folds.copy(), n_train=[76] * 25, n_test=[4] * 25)
    assert ft.p == 1.0 and not ft.significant
    tests = stats.compare_all(y, {"x": p, "x_again": p.copy()}, groups=g, n_boot=200)
    assert all(not t.significant and t.p_adj == 1.0 for t in tests)


def test_a_clearly_better_variant_is_significant_and_noise_is_not():
    y, good = synthetic_predictions(300, 2, signal=2.5, seed=11)
    rng = np.random.default_rng(12)
    bad = rng.dirichlet([1, 1], size=300)
    assert stats.delong_test(y, good, bad).p < 1e-6
    assert stats.paired_bootstrap_test(y, good, bad, n_boot=500).p < 0.01
    # two independent null predictors: not significant (fixed seeds, so no flakiness)
    noise2 = np.random.default_rng(13).dirichlet([1, 1], size=300)
    assert stats.delong_test(y, bad, noise2).p > 0.05


def test_bootstrap_interval_contains_estimate_and_groups_widen_it():
    y, p = synthetic_predictions(200, 3, signal=1.0, seed=5)
    ci = stats.bootstrap_auc_ci(y, p, n_boot=500, seed=1)
    assert ci.lo < ci.auc < ci.hi and ci.n_valid == 500
    # recordings in groups of 10 sharing predictions: the effective sample is 20, not 200
    g = np.arange(200) // 10
    p_g = p[g * 10]
    y_g = y[g * 10]
    ci_rec = stats.bootstrap_auc_ci(y_g, p_g, n_boot=500, seed=1)
    ci_grp = stats.bootstrap_auc_ci(y_g, p_g, groups=g, n_boot=500, seed=1)
    assert (ci_grp.hi - ci_grp.lo) > 1.5 * (ci_rec.hi - ci_rec.lo)
    assert "groups" in ci_grp.method


def test_fold_interval_corrected_is_wider_than_naive():
    a = np.array([0.7, 0.8, 0.75, 0.65, 0.72, np.nan])
    naive = stats.fold_auc_ci(a)
    corr = stats.fold_auc_ci(a, n_train=80, n_test=20)
    assert naive.auc == pytest.approx(np.nanmean(a)) and naive.n == 5
    assert (corr.hi - corr.lo) > (naive.hi - naive.lo) > 0


def test_holm_matches_definition():
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    adj = stats.holm(p)
    # sorted finite: 0.005 (x4) 0.01 (x3) 0.03 (x2) 0.04 (x1), running max
    assert adj[4] == pytest.approx(0.02)
    assert adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[3])
