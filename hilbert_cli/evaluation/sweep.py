"""Loss-weight sensitivity: each auxiliary weight varied over a grid, the others fixed at the
recipe's values, every point cross-validated over the same folds (variant ``hilbert``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..nn.config import ModelConfig
from ..training.config import LossConfig
from .config import SweepSection

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import RunResult

__all__ = ["sweep_configs", "sweep_rows", "plot_sweep"]


def sweep_configs(section: SweepSection, base_model: ModelConfig, base_loss: LossConfig
                  ) -> list[tuple[str, float, ModelConfig, LossConfig]]:
    mc = base_model.model_copy(update={"variant": "hilbert"})
    return [(name, v, mc, base_loss.model_copy(update={name: float(v)}))
            for name in section.losses for v in section.values]


def sweep_rows(results: dict[tuple[str, float], "RunResult"], base_loss: LossConfig, *, n_boot: int,
               level: float, seed: int) -> list[dict]:
    rows = []
    for (name, value), r in results.items():
        ci = r.auc_interval(n_boot=n_boot, level=level, seed=seed)
        fold = r.fold_interval(level=level)
        fixed = {k: getattr(base_loss, k) for k in ("contrastive", "cka", "mi") if k != name}
        rows.append({"loss": name, "weight": value, "auc": ci.auc, "auc_lo": ci.lo, "auc_hi": ci.hi,
                     "auc_fold_mean": fold.auc, "auc_fold_sd": r.fold_sd, "is_base": value == getattr(base_loss, name),
                     "fixed": fixed, "run": r.spec.key})
    return rows


def plot_sweep(rows: list[dict], path: Path, title: str) -> Path | None:
    """AUC (with its interval) against each weight; a symlog x axis keeps 0 on the plot."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = list(dict.fromkeys(r["loss"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for i, name in enumerate(losses):
        rr = sorted((r for r in rows if r["loss"] == name), key=lambda r: r["weight"])
        x = np.array([r["weight"] for r in rr])
        y = np.array([r["auc"] for r in rr]) * 100
        lo = np.array([r["auc_lo"] for r in rr]) * 100
        hi = np.array([r["auc_hi"] for r in rr]) * 100
        xo = x * (1 + 0.04 * (i - 1)) + 0.004 * (i - 1)  # small dodge so the bars do not overlap
        ax.errorbar(xo, y, yerr=[np.nan_to_num(y - lo), np.nan_to_num(hi - y)], marker="o", capsize=3,
                    label={"contrastive": "contrastive (λ1)", "cka": "CKA (λ2)", "mi": "MI balance (λ3)"}.get(name, name))
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("loss weight (others fixed)")
    ax.set_ylabel("out-of-fold AUC (%)")
    ax.set_title(title)
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
