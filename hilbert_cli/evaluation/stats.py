"""Statistics for honest comparisons of cross-validated classifiers.

Everything here works on out-of-fold (OOF) predictions: one probability row per recording,
produced by a model that never saw that recording. Units of resampling are recordings, or
groups (speaker / family) when the evaluation is grouped, so a bootstrap never treats two
recordings of one subject as independent evidence.

- ``macro_auc``             one-vs-rest macro AUC: the one implementation, scikit-learn's
                            (training/metrics.py), re-exported here.
- ``bootstrap_auc_ci``      95 % percentile interval of the pooled OOF AUC, bootstrap over
                            recordings (or groups).
- ``fold_auc_ci``           interval across folds: mean fold AUC with a t interval whose variance
                            is corrected for the overlap of training sets (Nadeau & Bengio 2003).
- ``delong_test``           paired DeLong test of two binary classifiers on the same recordings.
- ``paired_bootstrap_test`` paired bootstrap of the AUC difference (any number of classes).
- ``corrected_fold_ttest``  paired corrected resampled t-test on per-fold AUCs.
- ``paired_test``           DeLong for binary tasks, paired bootstrap otherwise.
- ``holm``                  Holm-Bonferroni adjustment for a family of tests.
- ``compare_all``           every pair of variants, with raw and Holm-adjusted p-values.

Identical predictions give a difference of exactly zero and p = 1 in every test, so a
variant compared with itself is never significant.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..training.metrics import macro_auc

__all__ = ["macro_auc", "AucInterval", "bootstrap_auc_ci", "fold_auc_ci", "PairedTest", "delong_test",
           "paired_bootstrap_test", "corrected_fold_ttest", "paired_test", "holm", "compare_all",
           "MULTIPLE_COMPARISONS_NOTE"]

ALPHA = 0.05


# ----------------------------------------------------------------------------- AUC kernels
def _as_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    return p


def _class_scores(y: np.ndarray, probs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positives mask, score) per one-vs-rest problem; one problem for a binary task."""
    n_classes = probs.shape[1]
    if n_classes == 2:
        return [(y == 1, probs[:, 1])]
    return [(y == c, probs[:, c]) for c in range(n_classes)]


def _weighted_auc(pos: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC (ties count 1/2) under each row of `weights` ([B, N] sample multiplicities).

    Returns [B]; NaN where a replicate has no positive or no negative weight.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    w = weights[:, order]
    pos_s = pos[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first index of each tied block
    wpos = np.add.reduceat(w * pos_s, starts, axis=1)
    wneg = np.add.reduceat(w * ~pos_s, starts, axis=1)
    below = np.cumsum(wneg, axis=1) - wneg
    num = (wpos * (below + 0.5 * wneg)).sum(axis=1)
    den = wpos.sum(axis=1) * wneg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _macro_auc_weighted(y: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The bootstrap's kernel: macro AUC under many resampling weights at once ([B] from [B, N]).
    Not a second metric: with unit weights it is metrics.macro_auc (tests/test_compare_stats.py)."""
    per = [_weighted_auc(pos, sc, weights) for pos, sc in _class_scores(y, probs)]
    per = np.stack(per)  # [C, B]
    # a replicate missing any class is undefined for the macro average (like sklearn)
    return per.mean(axis=0)


def _replicate_weights(n: int, groups, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] multiplicities of each recording in each bootstrap replicate."""
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = rng.integers(0, n, size=(n_boot, n))
        w = np.zeros((n_boot, n))
        np.add.at(w, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
        return w
    _, gidx = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    g = int(gidx.max()) + 1
    draws = rng.integers(0, g, size=(n_boot, g))
    gw = np.zeros((n_boot, g))
    np.add.at(gw, (np.repeat(np.arange(n_boot), g), draws.ravel()), 1.0)
    return gw[:, gidx]


def _chunks(n_boot: int, n: int, budget: int = 4_000_000):
    step = max(1, budget // max(n, 1))
    for s in range(0, n_boot, step):
        yield s, min(n_boot, s + step)


# ----------------------------------------------------------------------------- intervals
@dataclass
class AucInterval:
    auc: float
    lo: float
    hi: float
    level: float
    method: str
    n: int
    n_valid: int = 0  # bootstrap replicates where the AUC was defined

    def as_dict(self) -> dict:
        return asdict(self)

    def fmt(self, scale: float = 100.0, digits: int = 1) -> str:
        if not np.isfinite(self.auc):
            return "n/a"
        if not (np.isfinite(self.lo) and np.isfinite(self.hi)):
            return f"{self.auc * scale:.{digits}f}"
        return f"{self.auc * scale:.{digits}f} [{self.lo * scale:.{digits}f}, {self.hi * scale:.{digits}f}]"


def bootstrap_auc_ci(y, probs, *, groups=None, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> AucInterval:
    """Percentile bootstrap interval of the pooled OOF macro AUC (resampling recordings or groups)."""
    y = np.asarray(y)
    p = _as_probs(probs)
    auc = macro_auc(y, p)
    vals = []
    w_all = _replicate_weights(len(y), groups, n_boot, seed)
    for a, b in _chunks(n_boot, len(y)):
        vals.append(_macro_auc_weighted(y, p, w_all[a:b]))
    v = np.concatenate(vals) if vals else np.array([])
    v = v[np.isfinite(v)]
    lo, hi = (np.nan, np.nan)
    if v.size >= 10:
        lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    unit = "groups" if groups is not None else "recordings"
    return AucInterval(auc, float(lo), float(hi), level, f"bootstrap over {unit} ({n_boot})", len(y), int(v.size))


def _t_quantile(q: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, df))


def fold_auc_ci(fold_aucs, *, n_train=None, n_test=None, level: float = 0.95) -> AucInterval:
    """Mean per-fold AUC with a t interval across folds.

    With n_train / n_test (per fold, or scalars) the variance is the Nadeau-Bengio corrected
    one, (1/k + n_test/n_train) * s^2, which accounts for the folds sharing training data;
    without them it is the naive s^2/k (too narrow for k-fold CV: say so when you use it).
    """
    a = np.asarray(fold_aucs, dtype=np.float64)
    a = a[np.isfinite(a)]
    k = a.size
    if k == 0:
        return AucInterval(float("nan"), float("nan"), float("nan"), level, "across folds", 0)
    mean = float(a.mean())
    if k < 2:
        return AucInterval(mean, float("nan"), float("nan"), level, "across folds", k)
    s2 = float(a.var(ddof=1))
    if n_train is not None and n_test is not None:
        ratio = float(np.mean(np.asarray(n_test, dtype=float)) / np.mean(np.asarray(n_train, dtype=float)))
        var = (1.0 / k + ratio) * s2
        method = f"across {k} folds (t, Nadeau-Bengio corrected)"
    else:
        var = s2 / k
        method = f"across {k} folds (t, naive)"
    half = _t_quantile(1 - (1 - level) / 2, k - 1) * math.sqrt(var)
    return AucInterval(mean, max(0.0, mean - half), min(1.0, mean + half), level, method, k, k)


# ----------------------------------------------------------------------------- paired tests
@dataclass
class PairedTest:
    a: str
    b: str
    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    p: float
    method: str
    lo: float = float("nan")  # interval of the difference, where the method gives one
    hi: float = float("nan")
    stat: float = float("nan")
    p_adj: float = float("nan")
    extra: dict = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        p = self.p_adj if np.isfinite(self.p_adj) else self.p
        return bool(np.isfinite(p) and p < ALPHA)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["significant"] = self.significant
        return d


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _midrank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def _delong_components(pos: np.ndarray, scores: np.ndarray):
    """Fast DeLong (Sun & Xu 2014): AUCs [k] and structural components V10 [k, m], V01 [k, n]."""
    xp = scores[:, pos]
    xn = scores[:, ~pos]
    m, n = xp.shape[1], xn.shape[1]
    k = scores.shape[0]
    tx = np.stack([_midrank(xp[r]) for r in range(k)])
    ty = np.stack([_midrank(xn[r]) for r in range(k)])
    tz = np.stack([_midrank(np.concatenate([xp[r], xn[r]])) for r in range(k)])
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v01, v10


def delong_test(y, probs_a, probs_b, *, names=("a", "b"), level: float = 0.95) -> PairedTest:
    """Paired DeLong test of AUC(a) = AUC(b) for a binary task (same recordings, same labels)."""
    y = np.asarray(y)
    pa, pb = _as_probs(probs_a), _as_probs(probs_b)
    if pa.shape[1] != 2 or pb.shape[1] != 2:
        raise ValueError("delong_test is for binary tasks; use paired_bootstrap_test")
    pos = y == 1
    if pos.all() or (~pos).all():
        return PairedTest(names[0], names[1], float("nan"), float("nan"), float("nan"), float("nan"), "DeLong")
    scores = np.stack([pa[:, 1], pb[:, 1]])
    aucs, v01, v10 = _delong_components(pos, scores)
    m, n = v01.shape[1], v10.shape[1]
    s01 = np.atleast_2d(np.cov(v01)) if m > 1 else np.zeros((2, 2))
    s10 = np.atleast_2d(np.cov(v10)) if n > 1 else np.zeros((2, 2))
    cov = s01 / m + s10 / n
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if np.array_equal(scores[0], scores[1]) or (var <= 1e-15 and abs(diff) <= 1e-12):
        z, p, se = 0.0, 1.0, 0.0
    elif var <= 1e-15:
        z, p, se = float("inf"), 0.0, 0.0
    else:
        se = math.sqrt(var)
        z = diff / se
        p = min(1.0, 2.0 * _norm_sf(abs(z)))
    from scipy.stats import norm

    q = float(norm.ppf(1 - (1 - level) / 2))
    return PairedTest(
        names[0], names[1], float(aucs[0]), float(aucs[1]), diff, float(p), "DeLong",
        lo=diff - q * se, hi=diff + q * se, stat=float(z),
    )


def paired_bootstrap_test(
    y, probs_a, probs_b, *, groups=None, names=("a", "b"), n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> PairedTest:
    """Paired bootstrap of AUC(a) - AUC(b): both scored on the same resampled recordings (or groups).

    Two-sided p = min(1, 2 * min(P*(d <= 0), P*(d >= 0))) with the usual +1 smoothing, and a
    percentile interval of the difference. Identical predictions give d = 0 in every replicate
    and p = 1.
    """
    y = np.asarray(y)
    pa, pb = _as_probs(probs_a), _as_probs(probs_b)
    auc_a, auc_b = macro_auc(y, pa), macro_auc(y, pb)
    unit = "groups" if groups is not None else "recordings"
    method = f"paired bootstrap over {unit} ({n_boot})"
    if np.array_equal(pa, pb):
        return PairedTest(names[0], names[1], auc_a, auc_b, 0.0, 1.0, method, lo=0.0, hi=0.0, stat=0.0)
    w_all = _replicate_weights(len(y), groups, n_boot, seed)
    ds = []
    for a, b in _chunks(n_boot, len(y)):
        w = w_all[a:b]
        ds.append(_macro_auc_weighted(y, pa, w) - _macro_auc_weighted(y, pb, w))
    d = np.concatenate(ds)
    d = d[np.isfinite(d)]
    if d.size < 10:
        return PairedTest(names[0], names[1], auc_a, auc_b, auc_a - auc_b, float("nan"), method)
    le = (np.sum(d <= 0) + 1) / (d.size + 1)
    ge = (np.sum(d >= 0) + 1) / (d.size + 1)
    p = float(min(1.0, 2 * min(le, ge)))
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
    stat = (auc_a - auc_b) / sd if sd and sd > 0 else 0.0
    return PairedTest(names[0], names[1], auc_a, auc_b, float(auc_a - auc_b), p, method, lo=float(lo), hi=float(hi), stat=float(stat))


def corrected_fold_ttest(fold_aucs_a, fold_aucs_b, *, n_train, n_test, names=("a", "b")) -> PairedTest:
    """Nadeau-Bengio corrected resampled t-test on paired per-fold AUCs (same folds for both)."""
    a = np.asarray(fold_aucs_a, dtype=float)
    b = np.asarray(fold_aucs_b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    k = d.size
    method = "corrected resampled t-test over folds"
    ma, mb = (float(a[ok].mean()), float(b[ok].mean())) if k else (float("nan"), float("nan"))
    if k < 2:
        return PairedTest(names[0], names[1], ma, mb, ma - mb, float("nan"), method)
    mean = float(d.mean())
    s2 = float(d.var(ddof=1))
    ratio = float(np.mean(np.asarray(n_test, dtype=float)) / np.mean(np.asarray(n_train, dtype=float)))
    var = (1.0 / k + ratio) * s2
    if var <= 1e-15:
        t, p = (0.0, 1.0) if abs(mean) <= 1e-12 else (float("inf"), 0.0)
    else:
        from scipy import stats

        t = mean / math.sqrt(var)
        p = float(2 * stats.t.sf(abs(t), k - 1))
    return PairedTest(names[0], names[1], ma, mb, mean, float(p), method, stat=float(t))


def paired_test(y, probs_a, probs_b, *, groups=None, names=("a", "b"), method: str = "auto", n_boot: int = 2000, seed: int = 0) -> PairedTest:
    """DeLong for binary tasks without groups; paired bootstrap otherwise (or as asked).

    DeLong's variance treats recordings as independent, so a grouped evaluation (several
    recordings per subject) uses the bootstrap over groups.
    """
    p = _as_probs(probs_a)
    if method == "auto":
        method = "delong" if (p.shape[1] == 2 and groups is None) else "bootstrap"
    if method == "delong":
        return delong_test(y, probs_a, probs_b, names=names)
    if method == "bootstrap":
        return paired_bootstrap_test(y, probs_a, probs_b, groups=groups, names=names, n_boot=n_boot, seed=seed)
    raise ValueError(f"unknown paired test method {method!r} (auto, delong, bootstrap)")


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count in the family)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def compare_all(
    y, probs: dict[str, np.ndarray], *, groups=None, method: str = "auto", n_boot: int = 2000, seed: int = 0,
    pairs: list[tuple[str, str]] | None = None,
) -> list[PairedTest]:
    """Paired tests for every pair of variants (or the given pairs), Holm-adjusted as one family.

    All variants must be out-of-fold predictions for the same recordings in the same order.
    """
    names = list(probs)
    pairs = pairs if pairs is not None else list(itertools.combinations(names, 2))
    tests = [
        paired_test(y, probs[a], probs[b], groups=groups, names=(a, b), method=method, n_boot=n_boot, seed=seed)
        for a, b in pairs
    ]
    adj = holm([t.p for t in tests])
    for t, pa in zip(tests, adj):
        t.p_adj = float(pa)
    return tests


MULTIPLE_COMPARISONS_NOTE = (
    "p-values are two-sided. With {m} pairwise comparisons, p_adj is Holm-Bonferroni adjusted "
    "(family-wise error rate {alpha:g}); a difference is called significant only when p_adj < {alpha:g}. "
    "Tests are paired on the same out-of-fold predictions ({method}). Intervals and tests say nothing "
    "about recordings unlike these (other sites, other interviewers)."
)
