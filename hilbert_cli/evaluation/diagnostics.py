"""Modality-balance diagnostics of a trained HILBERT model (issue 8).

For a fitted model and held-out recordings:
- CKA(Z_a, Z_j) and CKA(Z_t, Z_j): linear CKA over the recordings (the CKA loss's quantity);
- the two InfoNCE estimates I(z_a; z_j) and I(z_t; z_j) (the MI-balance loss's quantities,
  same critic and temperature as training; each is at most log(n), n = recordings scored);
- the MoE gate's mean weight per expert (and its entropy; a collapsed gate has entropy ~0);
- the masking check: the same model scored with the text masked (audio-only) and with the
  audio masked (text-only); a model that uses both modalities scores lower on both.

``modality_diagnostics(model, dataset, idx)`` has the signature of run_cv's diagnostics_fn,
so `hilbert train` can add these figures to every fold:

    run_cv(..., diagnostics_fn=make_diagnostics_fn(task))
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["modality_diagnostics", "make_diagnostics_fn", "latent_diagnostics", "summarise_folds", "diagnostics_markdown",
           "DIAG_KEYS"]

#: scalar keys averaged over folds (gate_mean is a list, averaged elementwise)
DIAG_KEYS = ("cka_a_j", "cka_t_j", "mi_a_j", "mi_t_j", "mi_gap", "mi_bound", "gate_entropy",
             "auc_full", "auc_audio_only", "auc_text_only")


def latent_diagnostics(z_a: np.ndarray, z_t: np.ndarray, z_j: np.ndarray, *, temperature: float = 0.1) -> dict:
    """CKA(Z_m, Z_j) and InfoNCE I(z_m; z_j) for m in {a, t}, on [n, k] latent arrays."""
    import torch

    from ..nn.losses import infonce_mi, linear_cka

    n = int(len(z_j))
    out: dict[str, Any] = {"n": n, "mi_bound": math.log(n) if n > 0 else float("nan")}
    if n < 3:
        out.update(cka_a_j=float("nan"), cka_t_j=float("nan"), mi_a_j=float("nan"), mi_t_j=float("nan"),
                   mi_gap=float("nan"))
        return out
    za, zt, zj = (torch.as_tensor(np.asarray(z, np.float32)) for z in (z_a, z_t, z_j))
    with torch.no_grad():
        out["cka_a_j"] = float(linear_cka(za, zj))
        out["cka_t_j"] = float(linear_cka(zt, zj))
        out["mi_a_j"] = float(infonce_mi(za, zj, temperature))
        out["mi_t_j"] = float(infonce_mi(zt, zj, temperature))
    out["mi_gap"] = out["mi_a_j"] - out["mi_t_j"]
    return out


def _gate_stats(gate: np.ndarray) -> dict:
    g = np.asarray(gate, np.float64)
    if g.ndim != 2 or g.shape[0] == 0:
        return {"gate_mean": [], "gate_entropy": float("nan")}
    mean = g.mean(axis=0)
    if g.shape[1] <= 1:  # MLP head (variant transfer): no gate
        return {"gate_mean": mean.tolist(), "gate_entropy": float("nan")}
    p = np.clip(mean / mean.sum(), 1e-12, 1.0)
    return {"gate_mean": mean.tolist(), "gate_entropy": float(-(p * np.log(p)).sum())}


def _infer_task(model, dataset, idx) -> Optional[str]:
    names = list(getattr(model, "class_names", []) or [])
    cands = [t for t, cn in dataset.class_names.items()
             if list(cn) == names and (np.asarray(dataset.labels[t])[idx] >= 0).all()]
    return cands[0] if len(cands) == 1 else None


def modality_diagnostics(model, dataset, idx, *, task: Optional[str] = None, temperature: Optional[float] = None,
                         collect: Optional[dict] = None) -> dict:
    """Diagnostics of a FittedModel on dataset recordings idx (normally its test fold).

    Returns plain numbers (JSON-able): cka_a_j, cka_t_j, mi_a_j, mi_t_j, mi_gap, mi_bound (log n),
    gate_mean (list, per expert), gate_entropy, and - when the task's labels are known (task=,
    or the only task whose classes match the model) - auc_full, auc_audio_only (text masked),
    auc_text_only (audio masked) on idx.

    collect: a dict that receives the raw arrays (idx, probs, probs_audio_only, probs_text_only)
    so that a caller can pool them over folds (a per-fold AUC on a small fold is noisy).
    """
    from ..training.metrics import macro_auc

    idx = np.asarray(idx, np.int64)
    if temperature is None:
        lc = getattr(model, "loss_config", None)
        temperature = float(getattr(lc, "temperature", 0.1) or 0.1)
    full = model.forward(dataset, idx)
    audio_only = model.forward(dataset, idx, drop_modality="text")
    text_only = model.forward(dataset, idx, drop_modality="audio")
    out = latent_diagnostics(full["z_a"], full["z_t"], full["z_j"], temperature=temperature)
    out.update(_gate_stats(full["gate"]))
    task = task or _infer_task(model, dataset, idx)
    if task is not None:
        y = np.asarray(dataset.labels[task])[idx]
        out["auc_full"] = macro_auc(y, full["probs"])
        out["auc_audio_only"] = macro_auc(y, audio_only["probs"])
        out["auc_text_only"] = macro_auc(y, text_only["probs"])
    if collect is not None:
        collect.update(idx=idx, probs=full["probs"], probs_audio_only=audio_only["probs"],
                       probs_text_only=text_only["probs"])
    return out


def make_diagnostics_fn(task: Optional[str] = None, *, sink: Optional[list] = None) -> Callable:
    """A run_cv diagnostics_fn(fitted, dataset, test_idx) -> dict.

    sink: a list that receives, per fold, the raw arrays of ``modality_diagnostics(collect=)``.
    """

    def fn(fitted, dataset, idx):
        raw: Optional[dict] = {} if sink is not None else None
        d = modality_diagnostics(fitted, dataset, idx, task=task, collect=raw)
        if sink is not None:
            sink.append(raw)
        return {f"diag_{k}" if not k.startswith("diag_") else k: v for k, v in d.items()}

    return fn


def summarise_folds(diagnostics: list[dict]) -> dict:
    """Mean over folds of the diag_* figures that run_cv collected (gate_mean elementwise)."""
    out: dict[str, Any] = {}
    for k in DIAG_KEYS:
        vals = np.asarray([d.get(f"diag_{k}", np.nan) for d in diagnostics], float)
        vals = vals[np.isfinite(vals)]
        out[k] = float(vals.mean()) if vals.size else float("nan")
        if k in ("cka_a_j", "cka_t_j", "mi_a_j", "mi_t_j", "mi_gap") and vals.size > 1:
            out[f"{k}_sd"] = float(vals.std(ddof=1))
    gates = [np.asarray(d.get("diag_gate_mean") or d.get("gate_mean") or [], float) for d in diagnostics]
    gates = [g for g in gates if g.size]
    if gates and len({g.size for g in gates}) == 1:
        out["gate_mean"] = np.mean(gates, axis=0).tolist()
    else:
        out["gate_mean"] = []
    return out


def diagnostics_markdown(results) -> str:
    """A markdown table of the fold-averaged diagnostics of CVResults whose run_cv had
    ``diagnostics_fn=make_diagnostics_fn(task)`` (for the training report). Masking AUCs here
    are means of per-fold AUCs; `hilbert compare` also pools them and tests the differences."""

    def f(v, d=3):
        return "n/a" if v is None or not np.isfinite(v) else f"{v:.{d}f}"

    lines = ["| task | variant | CKA(Z_a,Z_j) | CKA(Z_t,Z_j) | I(z_a;z_j) | I(z_t;z_j) | log n | gate weight per expert "
             "| fold AUC full | audio-only | text-only |", "|" + "---|" * 11]
    for r in results:
        s = summarise_folds(r.diagnostics)
        gate = s.get("gate_mean") or []
        g = " ".join(f"{x:.2f}" for x in gate) if len(gate) > 1 else "(no gate)"
        lines.append(f"| {r.task} | {r.variant} | {f(s['cka_a_j'])} | {f(s['cka_t_j'])} | {f(s['mi_a_j'], 2)} | "
                     f"{f(s['mi_t_j'], 2)} | {f(s['mi_bound'], 2)} | {g} | {f(s['auc_full'])} | "
                     f"{f(s['auc_audio_only'])} | {f(s['auc_text_only'])} |")
    return "\n".join(lines)
