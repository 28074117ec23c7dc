"""The comparison's PNGs: variants.png, ablation.png and modality_<task>.png (sweep_<task>.png: sweep.py).

Each reads the JSON-able results of compare.py, so a report can be redrawn from compare.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["plot_variants", "plot_ablation", "plot_modality"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_variants(results: dict, path: Path) -> Optional[Path]:
    tasks = {t: e["variants"] for t, e in results["tasks"].items() if e.get("variants")}
    if not tasks:
        return None
    plt = _plt()
    n = len(tasks)
    fig, axes = plt.subplots(1, n, figsize=(max(4.0, 3.6 * n), 0.5 * max(len(v) for v in tasks.values()) + 1.6),
                             squeeze=False, sharey=True)
    for ax, (t, rows) in zip(axes[0], tasks.items()):
        y = np.arange(len(rows))[::-1]
        a = np.array([r["auc"] if r["auc"] is not None else np.nan for r in rows], float) * 100
        lo = np.array([r["auc_lo"] if r["auc_lo"] is not None else np.nan for r in rows], float) * 100
        hi = np.array([r["auc_hi"] if r["auc_hi"] is not None else np.nan for r in rows], float) * 100
        ax.errorbar(a, y, xerr=[np.nan_to_num(a - lo), np.nan_to_num(hi - a)], fmt="o", capsize=3)
        ax.axvline(50, color="grey", lw=0.8, ls=":")
        ax.set_yticks(y, [r["name"] for r in rows])
        ax.set_title(t)
        ax.set_xlabel("OOF AUC (%) [95 % CI]")
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ablation(results: dict, path: Path) -> Optional[Path]:
    tasks = {t: e["ablation"] for t, e in results["tasks"].items() if e.get("ablation")}
    if not tasks:
        return None
    plt = _plt()
    combos = list(dict.fromkeys(r["combo"] for rows in tasks.values() for r in rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(combos) * max(1, len(tasks)) * 0.6 + 2), 3.8))
    width = 0.8 / len(tasks)
    x = np.arange(len(combos))
    for i, (t, rows) in enumerate(tasks.items()):
        by = {r["combo"]: r for r in rows}
        a = np.array([by[c]["auc"] if c in by and by[c]["auc"] is not None else np.nan for c in combos]) * 100
        lo = np.array([by[c]["auc_lo"] if c in by and by[c]["auc_lo"] is not None else np.nan for c in combos]) * 100
        hi = np.array([by[c]["auc_hi"] if c in by and by[c]["auc_hi"] is not None else np.nan for c in combos]) * 100
        ax.bar(x + (i - (len(tasks) - 1) / 2) * width, a, width, label=t,
               yerr=[np.nan_to_num(a - lo), np.nan_to_num(hi - a)], capsize=2)
    ax.set_xticks(x, combos, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("OOF AUC (%)")
    ax.set_ylim(40, 100)
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.set_title("Loss ablation (variant hilbert, same folds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_modality(task: str, rows: list[dict], path: Path) -> Optional[Path]:
    if not rows:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
    x = np.arange(len(rows))
    for i, (k, lab) in enumerate((("auc_full", "full"), ("auc_audio_only", "audio only"), ("auc_text_only", "text only"))):
        v = np.array([r[k] if r[k] is not None else np.nan for r in rows], float) * 100
        ax1.bar(x + (i - 1) * 0.27, v, 0.27, label=lab)
    ax1.set_xticks(x, [r["name"] for r in rows], rotation=15, ha="right", fontsize=8)
    ax1.axhline(50, color="grey", lw=0.8, ls=":")
    ax1.set_ylim(30, 112)
    ax1.set_ylabel("OOF AUC (%)")
    ax1.set_title(f"{task}: masking check")
    ax1.legend(fontsize=8, ncol=3, loc="upper center")
    gates = [r.get("gate_mean") or [] for r in rows]
    width = max((len(g) for g in gates), default=0)
    if width > 1:
        m = np.full((len(rows), width), np.nan)
        for i, g in enumerate(gates):
            if len(g) == width:
                m[i] = g
        im = ax2.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=max(0.3, float(np.nanmax(m))))
        ax2.set_yticks(x, [r["name"] for r in rows], fontsize=8)
        ax2.set_xticks(range(width), [str(e) for e in range(width)])
        ax2.set_xlabel("expert")
        ax2.set_title("mean MoE gate weight")
        fig.colorbar(im, ax=ax2)
    else:
        ax2.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
