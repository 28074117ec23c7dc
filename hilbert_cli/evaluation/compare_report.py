"""The comparison report's sections (paper Tables 2-4) and its data files, for the one writer (report.py).

    <run_dir>/report.md          Table 2 (variants, AUC with 95 % intervals, paired tests),
                                 Table 3 (modality balance: CKA, InfoNCE, gate, masking check),
                                 Table 4 (loss ablation, best AUC with vs without each loss),
                                 loss-weight sensitivity table
    <run_dir>/compare.json       every number of the report
    <run_dir>/runs.parquet       one row per (run, fold): AUC, n_train, n_test, weights
    <run_dir>/oof.parquet        one row per (run, recording): fold, label, out-of-fold probabilities
                                 (full model, audio-only, text-only)
    <run_dir>/variants.png, ablation.png, sweep_<task>.png, modality_<task>.png
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .report import Section, render, write_report

__all__ = ["write_all", "compare_sections", "render_markdown", "rerender", "fmt_auc", "markdown_tables"]


def _f(v, digits: int = 1, scale: float = 100.0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v * scale:.{digits}f}"


def _best_auc(rows: list[dict]) -> float | None:
    """The highest finite AUC of a table column (the cell printed in bold), or None."""
    return max((r["auc"] for r in rows if r["auc"] is not None and math.isfinite(r["auc"])), default=None)


def _marked(row: dict | None, best: float | None) -> str:
    """A table cell: the row's AUC, in bold when it is the column's best; empty without a row."""
    if row is None:
        return ""
    cell = fmt_auc(row)
    return f"**{cell}**" if best is not None and row["auc"] == best else cell


def fmt_auc(row: dict, key: str = "auc", digits: int = 1) -> str:
    a, lo, hi = row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi")
    if a is None or not math.isfinite(a):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return _f(a, digits)
    return f"{_f(a, digits)} [{_f(lo, digits)}, {_f(hi, digits)}]"


def _p(p) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def _d(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v * 100:+.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


def _clean(o):
    """NaN/inf -> None so compare.json is strict JSON."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


# ------------------------------------------------------------------------------------------ tables
def markdown_tables(results: dict) -> dict[str, str]:
    """The report's tables as markdown strings: table2, tests, table3, table4, with_without, sweep."""
    tasks: dict = results["tasks"]
    names = list(tasks)
    out: dict[str, str] = {}

    # ---- Table 2: variants x tasks ----------------------------------------------------------
    var_names: list[str] = []
    for t in names:
        for r in tasks[t].get("variants", []):
            if r["name"] not in var_names:
                var_names.append(r["name"])
    if var_names:
        best = {t: _best_auc(tasks[t].get("variants", [])) for t in names}
        rows = []
        for v in var_names:
            first = next(r for t in names for r in tasks[t].get("variants", []) if r["name"] == v)
            cells = [v, first["variant"], f"{first['audio']} / {first['text']}"]
            for t in names:
                cells.append(_marked(next((r for r in tasks[t].get("variants", []) if r["name"] == v), None),
                                     best[t]))
            rows.append(cells)
        out["table2"] = _table(["variant", "model", "backbones (audio / text)"] + names, rows)
        frows = []
        for v in var_names:
            cells = [v]
            for t in names:
                r = next((r for r in tasks[t].get("variants", []) if r["name"] == v), None)
                cells.append("" if r is None else f"{_f(r['auc_fold_mean'])} ± {_f(r['auc_fold_sd'])} "
                                                  f"[{_f(r['auc_fold_lo'])}, {_f(r['auc_fold_hi'])}]")
            frows.append(cells)
        out["table2_folds"] = _table(["variant"] + names, frows)

    # ---- paired tests -----------------------------------------------------------------------
    trows = []
    for t in names:
        for x in tasks[t].get("tests", []):
            ci = "" if not (x.get("lo") is not None and math.isfinite(x["lo"]) and math.isfinite(x["hi"])) else \
                f"[{_f(x['lo'])}, {_f(x['hi'])}]"
            trows.append([t, f"{x['a']} vs {x['b']}", _f(x["auc_a"]), _f(x["auc_b"]), _d(x["diff"]), ci,
                          _p(x["p"]), _p(x["p_adj"]), "**yes**" if x["significant"] else "no", x["method"]])
    if trows:
        out["tests"] = _table(["task", "comparison", "AUC a", "AUC b", "Δ", "95 % CI of Δ", "p", "p (Holm)",
                               "significant", "test"], trows)

    # ---- Table 3: modality balance ------------------------------------------------------------
    drows = []
    for t in names:
        for r in tasks[t].get("diagnostics", []):
            gate = r.get("gate_mean") or []
            gate_s = " ".join(f"{g:.2f}" for g in gate) if len(gate) > 1 else "(no gate)"
            drows.append([
                t, r["name"], _f(r["cka_a_j"], 3, 1), _f(r["cka_t_j"], 3, 1), _f(r["mi_a_j"], 2, 1),
                _f(r["mi_t_j"], 2, 1), _f(r["mi_bound"], 2, 1), _f(r["gate_entropy"], 2, 1), gate_s,
                _f(r["auc_full"]), f"{_f(r['auc_audio_only'])} (p {_p(r['p_full_vs_audio_only'])})",
                f"{_f(r['auc_text_only'])} (p {_p(r['p_full_vs_text_only'])})",
                "yes" if r.get("full_beats_both") else "no",
            ])
    if drows:
        out["table3"] = _table(["task", "variant", "CKA(Z_a,Z_j)", "CKA(Z_t,Z_j)", "I(z_a;z_j)", "I(z_t;z_j)",
                                "log n", "gate entropy", "mean gate weight per expert", "AUC full",
                                "AUC audio-only", "AUC text-only", "full > both"], drows)

    # ---- Table 4: ablation ------------------------------------------------------------------
    abl_tasks = [t for t in names if tasks[t].get("ablation")]
    if abl_tasks:
        combos = list(dict.fromkeys(r["combo"] for t in abl_tasks for r in tasks[t]["ablation"]))
        rows = []
        best = {t: _best_auc(tasks[t]["ablation"]) for t in abl_tasks}
        for c in combos:
            any_row = next(r for t in abl_tasks for r in tasks[t]["ablation"] if r["combo"] == c)
            cells = ["✓" if any_row[k] else "" for k in ("contrastive", "cka", "mi")]
            for t in abl_tasks:
                cells.append(_marked(next((r for r in tasks[t]["ablation"] if r["combo"] == c), None), best[t]))
            rows.append(cells)
        out["table4"] = _table(["L_con", "L_CKA", "L_MI"] + abl_tasks, rows)
        wrows = []
        for t in abl_tasks:
            for r in tasks[t].get("with_without", []):
                wrows.append([t, {"contrastive": "L_con", "cka": "L_CKA", "mi": "L_MI"}[r["loss"]],
                              f"{_f(r['best_with'])} ({r['best_with_combo']})",
                              f"{_f(r['best_without'])} ({r['best_without_combo']})",
                              _d(r["delta"]), _p(r["p"]), _p(r["p_adj"]),
                              "**yes**" if r["significant"] else "no"])
        out["with_without"] = _table(["task", "loss", "best AUC with", "best AUC without", "Δ", "p", "p (Holm)",
                                      "significant"], wrows)

    # ---- sensitivity --------------------------------------------------------------------------
    srows = []
    for t in names:
        for r in sorted(tasks[t].get("sweep", []), key=lambda r: (r["loss"], r["weight"])):
            fixed = ", ".join(f"{k}={v:g}" for k, v in r["fixed"].items())
            srows.append([t, r["loss"], f"{r['weight']:g}" + (" (recipe)" if r["is_base"] else ""), fmt_auc(r),
                          f"{_f(r['auc_fold_mean'])} ± {_f(r['auc_fold_sd'])}", fixed])
    if srows:
        out["sweep"] = _table(["task", "loss", "weight", "AUC [95 % CI]", "fold AUC mean ± sd", "others fixed at"],
                              srows)
    return out


def compare_title(results: dict) -> str:
    return f"Comparison: {results['name']}"


def compare_sections(results: dict, plots: dict[str, list[str]]) -> list[Section]:
    """The comparison's sections: the setup, Table 2 and its paired tests, Tables 3 and 4, the
    sensitivity table and the files."""
    tb = markdown_tables(results)
    st = results["stats"]
    lvl = int(round(100 * st["level"]))
    unit = "groups (speakers/families)" if results["grouped"] else "recordings"
    lines = [
        f"Recipe `{results['recipe']}` · hilbert {results['tool_version']} · {results['n_folds']}-fold "
        f"{'grouped ' if results['grouped'] else ''}cross-validation (seed {results['seed']}) · device "
        f"{results['device']} · {results['distinct_runs']} distinct cross-validations in {results['seconds']:.0f} s.",
        "",
        "Every run of a task uses the **same folds**, so out-of-fold (OOF) predictions are paired recording by "
        "recording. AUC is the one-vs-rest macro AUC × 100 of the pooled OOF predictions, with a "
        f"{lvl} % percentile bootstrap interval over {unit} ({st['n_boot']} replicates). The fold table gives the "
        f"mean per-fold AUC ± sd with a {lvl} % t interval whose variance is corrected for overlapping training "
        "sets (Nadeau & Bengio).",
        "",
        "| task | recordings | classes (counts) | folds |",
        "|---|---|---|---|",
    ]
    for t, e in results["tasks"].items():
        counts = ", ".join(f"{c}: {n}" for c, n in zip(e["classes"], e["class_counts"]))
        drop = f" ({e['dropped']} without features in every dataset left out)" if e.get("dropped") else ""
        lines.append(f"| {t} | {e['n']}{drop} | {counts} | {e['n_folds']} |")
    lines.append("")
    out = [Section(None, lines)]
    if "table2" in tb:
        lines = ["Pooled OOF AUC [95 % CI]; best per task in bold.", "", tb["table2"], "",
                 "Per-fold AUC: mean ± sd [corrected 95 % CI]", "", tb["table2_folds"], ""]
        for p in plots.get("variants", []):
            lines += [f"![variants]({p})", ""]
        out.append(Section("Table 2 - variants", lines))
    if "tests" in tb:
        lines = [tb["tests"], "", results["multiple_comparisons"], ""]
        sig = [(t, x) for t, e in results["tasks"].items() for x in e.get("tests", []) if x["significant"]]
        if sig:
            lines.append("Significant differences: " + "; ".join(
                f"{t}: {x['a'] if x['diff'] > 0 else x['b']} > {x['b'] if x['diff'] > 0 else x['a']} "
                f"(Δ {_d(abs(x['diff']))}, p_adj {_p(x['p_adj'])})" for t, x in sig) + ".")
        else:
            lines.append("No difference between variants is significant after adjustment.")
        lines.append("")
        out.append(Section("Paired tests (same OOF predictions)", lines, level=3))
    if "table3" in tb:
        lines = [
            "Computed on each test fold with that fold's model, then averaged over folds: linear CKA between the "
            "modality latents and the joint latent; InfoNCE estimates of I(z_m; z_j) (same critic and temperature "
            "as training; each is at most log n, n = recordings in a test fold); the mixture-of-experts gate's mean "
            "weight per expert (entropy log E = uniform, 0 = one expert). Masking check: the same models scored "
            "with the text masked (audio-only) and with the audio masked (text-only), pooled OOF AUC, paired test "
            "against the full model; 'full > both' = the full model is better than both maskings with Holm-adjusted "
            "p < 0.05.", "", tb["table3"], ""]
        for p in plots.get("modality", []):
            lines += [f"![modality balance]({p})", ""]
        out.append(Section("Table 3 - modality balance", lines))
    if "table4" in tb:
        ab = results.get("ablation_settings", {})
        w = ab.get("weights") or {}
        wl = results.get("loss", {})
        weights = ", ".join(f"{k}={w.get(k) or wl.get(k) or 0.1:g}" for k in ("contrastive", "cka", "mi"))
        lines = [f"Variant hilbert with each subset of the auxiliary losses switched on ({weights} when on, 0 when "
                  "off), all over the same folds. Pooled OOF AUC [95 % CI].", "", tb["table4"], "",
                  "Best AUC with vs without each loss (paired test between the two best runs):", "",
                  tb["with_without"], ""]
        for p in plots.get("ablation", []):
            lines += [f"![ablation]({p})", ""]
        out.append(Section("Table 4 - loss ablation", lines))
    if "sweep" in tb:
        lines = ["One weight varied, the other two fixed at the recipe's values (variant hilbert).", "", tb["sweep"], ""]
        for p in plots.get("sweep", []):
            lines += [f"![sweep]({p})", ""]
        out.append(Section("Loss-weight sensitivity", lines))
    out.append(Section("Files", [
        "- `compare.json`: every number above; `runs.parquet`: per-fold AUCs of every run; `oof.parquet`: "
        "out-of-fold probabilities of every run (full model and the two maskings), for your own tests.", ""]))
    return out


def render_markdown(results: dict, plots: dict[str, list[str]]) -> str:
    return render(compare_title(results), compare_sections(results, plots))


# ------------------------------------------------------------------------------------------ files
def _write_parquet(run_dir: Path, results: dict, done: dict) -> None:
    import pyarrow as pa

    from ..parquet_io import write_table_atomic

    runs: dict[str, tuple] = {}
    for (part, task, tag), r in done.items():
        runs.setdefault(r.spec.key, (r, []))[1].append(f"{part}:{tag if isinstance(tag, str) else _tag(tag)}")
    fold_rows: dict[str, list] = {k: [] for k in ("run", "task", "label", "roles", "variant", "features", "contrastive",
                                                 "cka", "mi", "fold", "auc", "n_train", "n_val", "n_test")}
    oof_rows: dict[str, list] = {k: [] for k in ("run", "task", "label", "recording_id", "fold", "label_index",
                                                "probs", "probs_audio_only", "probs_text_only")}
    for i, (key, (r, roles)) in enumerate(runs.items()):
        rid = f"r{i:03d}"
        lc = r.spec.loss_config
        for k, auc in enumerate(r.cv.fold_aucs):
            for col, v in (("run", rid), ("task", r.spec.task), ("label", r.spec.label), ("roles", ";".join(roles)),
                           ("variant", r.spec.variant), ("features", r.spec.features),
                           ("contrastive", lc.contrastive), ("cka", lc.cka), ("mi", lc.mi), ("fold", k),
                           ("auc", float(auc)), ("n_train", int(r.cv.n_train[k])), ("n_val", int(r.cv.n_val[k])),
                           ("n_test", int(r.cv.n_test[k]))):
                fold_rows[col].append(v)
        n = r.frame.n
        oof_rows["run"] += [rid] * n
        oof_rows["task"] += [r.spec.task] * n
        oof_rows["label"] += [r.spec.label] * n
        oof_rows["recording_id"] += list(r.frame.rec_ids)
        oof_rows["fold"] += r.fold_of.astype(int).tolist()
        oof_rows["label_index"] += r.y.astype(int).tolist()
        oof_rows["probs"] += r.oof.astype(np.float32).tolist()
        for m in ("audio_only", "text_only"):
            arr = r.masked.get(m)
            oof_rows[f"probs_{m}"] += (arr.astype(np.float32).tolist() if arr is not None else [None] * n)
    meta = {"stage": "compare", "name": results["name"], "recipe": results["recipe"]}
    schema_f = pa.schema([("run", pa.string()), ("task", pa.string()), ("label", pa.string()), ("roles", pa.string()),
                          ("variant", pa.string()), ("features", pa.string()), ("contrastive", pa.float64()),
                          ("cka", pa.float64()), ("mi", pa.float64()), ("fold", pa.int32()), ("auc", pa.float64()),
                          ("n_train", pa.int32()), ("n_val", pa.int32()), ("n_test", pa.int32())])
    write_table_atomic(pa.table(fold_rows, schema=schema_f), run_dir / "runs.parquet", metadata=meta)
    schema_o = pa.schema([("run", pa.string()), ("task", pa.string()), ("label", pa.string()),
                          ("recording_id", pa.string()), ("fold", pa.int32()), ("label_index", pa.int32()),
                          ("probs", pa.list_(pa.float32())), ("probs_audio_only", pa.list_(pa.float32())),
                          ("probs_text_only", pa.list_(pa.float32()))])
    write_table_atomic(pa.table(oof_rows, schema=schema_o), run_dir / "oof.parquet", metadata=meta)


def _tag(tag) -> str:
    if isinstance(tag, tuple) and len(tag) == 2 and isinstance(tag[1], float):
        return f"{tag[0]}={tag[1]:g}"
    if isinstance(tag, tuple):
        return "+".join(tag) or "ce_only"
    return str(tag)


def write_all(run_dir: Path, results: dict, done: dict) -> Path:
    """compare.json, runs.parquet, oof.parquet, the PNGs and report.md."""
    from .compare_plots import plot_ablation, plot_modality, plot_variants
    from .sweep import plot_sweep

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, list[str]] = {"variants": [], "modality": [], "ablation": [], "sweep": []}
    p = plot_variants(results, run_dir / "variants.png")
    if p:
        plots["variants"].append(p.name)
    for t, e in results["tasks"].items():
        if e.get("diagnostics"):
            p = plot_modality(t, e["diagnostics"], run_dir / f"modality_{t}.png")
            if p:
                plots["modality"].append(p.name)
        if e.get("sweep"):
            p = plot_sweep(e["sweep"], run_dir / f"sweep_{t}.png", f"{t}: loss-weight sensitivity")
            if p:
                plots["sweep"].append(p.name)
    p = plot_ablation(results, run_dir / "ablation.png")
    if p:
        plots["ablation"].append(p.name)
    results["plots"] = plots
    clean = _clean(results)
    tmp = run_dir / ".compare.json.tmp"
    tmp.write_text(json.dumps(clean, indent=2, default=_json_default))
    tmp.replace(run_dir / "compare.json")
    _write_parquet(run_dir, results, done)
    return write_report(run_dir / "report.md", compare_title(clean), compare_sections(clean, plots))


def rerender(run_dir: Path) -> Path:
    """Rewrite report.md from an existing compare.json (e.g. after a change of layout)."""
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "compare.json").read_text())
    return write_report(run_dir / "report.md", compare_title(results), compare_sections(results, results.get("plots") or {}))
