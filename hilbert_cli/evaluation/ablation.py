"""Loss-combination ablation (paper Table 4): every non-empty subset of {contrastive, CKA, MI}.

Each combination trains variant ``hilbert`` with the losses of the subset switched on (at the
ablation weights) and the others at 0, cross-validated over the *same* folds as every other
run of the comparison. The summary gives, per loss, the best AUC over the combinations that
include it and the best over those that do not, with a paired test between those two runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..nn.config import ModelConfig
from ..training.config import LossConfig
from .config import LOSSES, AblationSection, ablation_combos

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import RunResult

__all__ = ["combo_label", "ablation_weights", "ablation_configs", "ablation_rows", "with_without_rows"]

SHORT = {"contrastive": "con", "cka": "CKA", "mi": "MI"}


def combo_label(combo: tuple[str, ...]) -> str:
    return "CE only" if not combo else " + ".join(SHORT[c] for c in combo)


def ablation_weights(section: AblationSection, base: LossConfig) -> dict[str, float]:
    """Weight of each loss when switched on: the section's, else the recipe's, else 0.1."""
    out = {}
    for name in LOSSES:
        w = section.weights.get(name)
        if w is None:
            w = getattr(base, name)
        out[name] = float(w) if w and w > 0 else 0.1
    return out


def ablation_configs(section: AblationSection, base_model: ModelConfig, base_loss: LossConfig
                     ) -> list[tuple[tuple[str, ...], ModelConfig, LossConfig]]:
    """(combo, model config, loss config) for every combination (7, or 8 with CE only)."""
    weights = ablation_weights(section, base_loss)
    mc = base_model.model_copy(update={"variant": "hilbert"})
    out = []
    for combo in ablation_combos(section.include_ce_only):
        lc = base_loss.model_copy(update={n: (weights[n] if n in combo else 0.0) for n in LOSSES})
        out.append((combo, mc, lc))
    return out


def ablation_rows(results: dict[tuple[str, ...], "RunResult"], *, n_boot: int, level: float, seed: int) -> list[dict]:
    """One row per combination: flags, pooled OOF AUC with its bootstrap interval, fold mean."""
    rows = []
    for combo, r in results.items():
        ci = r.auc_interval(n_boot=n_boot, level=level, seed=seed)
        fold = r.fold_interval(level=level)
        rows.append({
            "combo": combo_label(combo), **{n: (n in combo) for n in LOSSES},
            "auc": ci.auc, "auc_lo": ci.lo, "auc_hi": ci.hi, "auc_fold_mean": fold.auc,
            "auc_fold_lo": fold.lo, "auc_fold_hi": fold.hi, "run": r.spec.key,
        })
    return rows


def with_without_rows(results: dict[tuple[str, ...], "RunResult"], *, test: str = "auto", n_boot: int = 2000,
                      seed: int = 0) -> list[dict]:
    """Per loss: best AUC with it vs best AUC without it (paper Table 4), with a paired test."""
    from .stats import paired_test

    rows: list[dict[str, Any]] = []
    for name in LOSSES:
        with_ = {c: r for c, r in results.items() if name in c}
        without = {c: r for c, r in results.items() if name not in c}
        if not with_ or not without:
            continue
        cw = max(with_, key=lambda c: _auc_or_neg(with_[c]))
        co = max(without, key=lambda c: _auc_or_neg(without[c]))
        rw, ro = with_[cw], without[co]
        t = paired_test(rw.y, rw.oof, ro.oof, groups=rw.groups, names=(combo_label(cw), combo_label(co)),
                        method=test, n_boot=n_boot, seed=seed)
        rows.append({"loss": name, "best_with": rw.auc, "best_with_combo": combo_label(cw),
                     "best_without": ro.auc, "best_without_combo": combo_label(co),
                     "delta": rw.auc - ro.auc, "p": t.p, "test": t.method})
    from .stats import holm

    adj = holm([r["p"] for r in rows])
    for r, pa in zip(rows, adj):
        r["p_adj"] = float(pa)
        r["significant"] = bool(np.isfinite(pa) and pa < 0.05)
    return rows


def _auc_or_neg(r) -> float:
    a = r.auc
    return a if np.isfinite(a) else -1.0
