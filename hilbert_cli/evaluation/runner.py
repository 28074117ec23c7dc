"""One `hilbert compare` run: variants, loss ablation and weight sweeps over the same folds.

Every run of a task - whatever its variant, losses or features (e.g. a CLAP baseline on its
own features) - is cross-validated over one set of folds, made once per task over the
recordings that every features dataset of the comparison covers. Out-of-fold predictions are
therefore paired recording by recording, which is what the paired tests need. Identical
configurations are run once (the sweep's base point is the ablation's full combination).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..nn.config import ModelConfig
from ..training.config import LossConfig, TrainConfig
from .config import CompareSection, VariantSpec, parse_compare
from .diagnostics import make_diagnostics_fn, summarise_folds
from .stats import AucInterval, bootstrap_auc_ci, fold_auc_ci, macro_auc

__all__ = ["TaskFrame", "RunSpec", "RunResult", "CompareEngine", "CompareRun", "run_compare", "PRIMARY"]

#: key of the recipe's own features dataset
PRIMARY = "recipe"


@dataclass
class TaskFrame:
    """The recordings of one task that every dataset covers, their labels and the shared folds."""

    task: str
    rec_ids: list[str]
    y: np.ndarray
    groups: Optional[np.ndarray]
    class_names: list[str]
    splits: list[tuple[np.ndarray, np.ndarray]]  # indices into rec_ids

    @property
    def n(self) -> int:
        return len(self.rec_ids)

    @property
    def fold_of(self) -> np.ndarray:
        f = np.full(self.n, -1)
        for k, (_, te) in enumerate(self.splits):
            f[te] = k
        return f


@dataclass
class RunSpec:
    task: str
    label: str
    features: str
    model_config: ModelConfig
    loss_config: LossConfig
    #: a training.baselines kind (linear, length-only): run that instead of the model
    baseline: Optional[str] = None

    @property
    def variant(self) -> str:
        return self.baseline or self.model_config.variant

    @property
    def key(self) -> str:
        if self.baseline:
            return json.dumps({"task": self.task, "features": self.features, "baseline": self.baseline}, sort_keys=True)
        mc = self.model_config.model_dump(mode="json")
        lc = self.loss_config.model_dump(mode="json")
        if mc["variant"] in ("transfer", "transfer_moe"):  # trained with cross-entropy only
            lc = {k: v for k, v in lc.items() if k not in ("contrastive", "cka", "mi", "temperature")}
        elif mc["variant"] == "contrastive_moe":
            lc = {k: v for k, v in lc.items() if k not in ("cka", "mi")}
        return json.dumps({"task": self.task, "features": self.features, "model": mc, "loss": lc}, sort_keys=True)


@dataclass
class RunResult:
    spec: RunSpec
    frame: TaskFrame
    cv: Any  # training.cv.CVResult
    oof: np.ndarray  # [n, C], frame order
    fold_of: np.ndarray  # frame order
    masked: dict[str, np.ndarray] = field(default_factory=dict)  # audio_only / text_only, frame order
    diag: dict = field(default_factory=dict)
    seconds: float = 0.0
    _ci: dict = field(default_factory=dict, repr=False)

    @property
    def y(self) -> np.ndarray:
        return self.frame.y

    @property
    def groups(self):
        return self.frame.groups

    @property
    def auc(self) -> float:
        return macro_auc(self.y, self.oof)

    @property
    def fold_aucs(self) -> list[float]:
        return list(self.cv.fold_aucs)

    @property
    def fold_sd(self) -> float:
        a = np.asarray(self.fold_aucs, float)
        a = a[np.isfinite(a)]
        return float(a.std(ddof=1)) if a.size > 1 else float("nan")

    def auc_interval(self, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> AucInterval:
        key = (n_boot, level, seed)
        if key not in self._ci:
            self._ci[key] = bootstrap_auc_ci(self.y, self.oof, groups=self.groups, n_boot=n_boot, level=level, seed=seed)
        return self._ci[key]

    def fold_interval(self, *, level: float = 0.95) -> AucInterval:
        n_train = np.asarray(self.cv.n_train) + np.asarray(self.cv.n_val)
        return fold_auc_ci(self.fold_aucs, n_train=n_train, n_test=self.cv.n_test, level=level)


class CompareEngine:
    """Holds the datasets, makes the shared folds per task, runs (and caches) CV runs."""

    def __init__(self, datasets: dict, train_config: TrainConfig, *, grouped: bool = True, diagnostics: bool = True,
                 on_fold: Optional[Callable[[RunSpec, int, dict], None]] = None):
        if PRIMARY not in datasets:
            raise ValueError(f"datasets must include the recipe's dataset under {PRIMARY!r}")
        self.datasets = datasets
        self.train_config = train_config
        self.grouped = grouped
        self.diagnostics = diagnostics
        self.on_fold = on_fold
        self._frames: dict[str, TaskFrame] = {}
        self._runs: dict[str, RunResult] = {}
        self.dropped: dict[str, int] = {}
        if train_config.threads:
            import torch

            torch.set_num_threads(train_config.threads)

    # ---- folds ----------------------------------------------------------------------------
    def frame(self, task: str) -> TaskFrame:
        if task in self._frames:
            return self._frames[task]
        from ..training.splits import check_grouped, make_splits

        main = self.datasets[PRIMARY]
        if task not in main.labels:
            raise ConfigError(f"task {task!r} has no labels in the recipe's dataset")
        idx = main.task_indices(task)
        ids = [main.recording_ids[i] for i in idx]
        keep = np.ones(len(ids), bool)
        for name, ds in self.datasets.items():
            if name == PRIMARY:
                continue
            have = set(ds.recording_ids)
            keep &= np.array([r in have for r in ids], bool)
        if not keep.all():
            self.dropped[task] = int((~keep).sum())
            warnings.warn(f"task {task!r}: {int((~keep).sum())} recording(s) lack features in another dataset of "
                          "the comparison and are left out of every run", stacklevel=2)
        idx = idx[keep]
        ids = [main.recording_ids[i] for i in idx]
        y = main.labels[task][idx]
        groups = main.groups[idx] if (self.grouped and main.groups is not None) else None
        for name, ds in self.datasets.items():  # the same labels everywhere
            if name == PRIMARY or task not in ds.labels:
                continue
            pos = _positions(ds, ids)
            other = np.asarray(ds.class_names[task])[ds.labels[task][pos]]
            mine = np.asarray(main.class_names[task])[y]
            if not np.array_equal(other, mine):
                raise InputError(f"task {task!r}: the labels of features dataset {name} differ from the recipe's")
        tc = self.train_config
        splits = make_splits(y, groups, tc.n_folds, tc.seed, task=task)
        if groups is not None and not check_grouped(splits, groups):  # pragma: no cover - sklearn guarantees it
            raise RuntimeError(f"task {task}: a group appears in train and test")
        fr = TaskFrame(task, ids, np.asarray(y), groups, list(main.class_names[task]), splits)
        self._frames[task] = fr
        return fr

    # ---- runs -----------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunResult:
        key = spec.key
        if key in self._runs:
            return self._runs[key]
        from ..training.cv import run_cv

        fr = self.frame(spec.task)
        ds = self.datasets.get(spec.features)
        if ds is None:
            raise ConfigError(f"features dataset {spec.features!r} is not loaded")
        pos = _positions(ds, fr.rec_ids)
        if spec.task not in ds.labels or (ds.labels[spec.task][pos] < 0).any():
            # a features dataset loaded without this task's labels: attach the frame's labels
            vals: list = [None] * ds.n
            for p, yy in zip(pos, fr.y):
                vals[int(p)] = int(yy)
            ds.set_labels(spec.task, vals, fr.class_names)
        splits = [(pos[tr], pos[te]) for tr, te in fr.splits]
        sink: list = []
        diag_fn = make_diagnostics_fn(spec.task, sink=sink) if self.diagnostics else None

        def cb(k, d):
            if self.on_fold is not None:
                self.on_fold(spec, k, d)

        t0 = time.perf_counter()
        if spec.baseline:
            from ..training.baselines import run_baseline_cv

            cv, sink = run_baseline_cv(ds, spec.task, splits, spec.baseline), []
            for k, a in enumerate(cv.fold_aucs):
                cb(k, {"auc": a})
        else:
            cv = run_cv(ds, spec.task, spec.model_config, self.train_config, splits, spec.loss_config,
                        fold_callback=cb, diagnostics_fn=diag_fn)
        inv = {int(p): i for i, p in enumerate(pos)}
        order = np.array([inv[int(p)] for p in cv.indices])
        oof = np.zeros((fr.n, cv.oof_probs.shape[1]))
        oof[order] = cv.oof_probs
        fold_of = np.full(fr.n, -1)
        fold_of[order] = cv.fold_of
        masked: dict[str, np.ndarray] = {}
        if sink:
            for name in ("audio_only", "text_only"):
                arr = np.zeros_like(oof)
                for raw in sink:
                    rows = np.array([inv[int(p)] for p in raw["idx"]])
                    arr[rows] = raw[f"probs_{name}"]
                masked[name] = arr
        res = RunResult(spec, fr, cv, oof, fold_of, masked, summarise_folds(cv.diagnostics) if sink else {},
                        seconds=time.perf_counter() - t0)
        self._runs[key] = res
        return res

    @property
    def runs(self) -> dict[str, RunResult]:
        return dict(self._runs)


def _positions(ds, ids: Sequence[str]) -> np.ndarray:
    where = getattr(ds, "_compare_pos", None)
    if where is None or len(where) != ds.n:
        where = {r: i for i, r in enumerate(ds.recording_ids)}
        try:
            ds._compare_pos = where
        except Exception:  # pragma: no cover - frozen dataclass
            pass
    return np.array([where[r] for r in ids], np.int64)


# ---------------------------------------------------------------------------------------------
@dataclass
class CompareRun:
    run_dir: Path
    results: dict  # the JSON-able summary (compare.json)
    engine: CompareEngine
    seconds: float = 0.0


def _load_feature_sets(recipe, specs: list[VariantSpec], datasets: dict, tasks: list[str]) -> dict:
    from ..training.data import FeatureDataset

    out = dict(datasets)
    d = recipe.data
    for s in specs:
        if s.features is None:
            continue
        key = str(s.features)
        if key in out:
            continue
        if d.synthetic is not None:
            raise ConfigError(f"compare.variants {s.name!r}: features= needs a recipe with data.features/labels "
                              "(not [data.synthetic])")
        if not Path(s.features).exists():
            raise ConfigError(f"compare.variants {s.name!r}: features: not found: {s.features}")
        specs_t = {t.name: t for t in recipe.tasks}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[key] = FeatureDataset.from_parquet(
                s.features, d.labels, tasks={t: specs_t[t].label_column for t in tasks}, id_column=d.id_column,
                group_column=d.group_column, max_segments=recipe.train.max_segments,
                class_names={t: specs_t[t].classes for t in tasks if specs_t[t].classes})
    return out


def _backbones(ds) -> dict:
    meta = getattr(ds, "features_metadata", {}) or {}

    def alias(v):
        if isinstance(v, dict):
            return v.get("alias") or v.get("repo") or "?"
        return v if v else "?"

    return {"audio": alias(meta.get("audio_model")), "text": alias(meta.get("text_model")),
            "d_audio": ds.d_audio, "d_text": ds.d_text}


def run_compare(recipe, section: Optional[CompareSection] = None, *, out_dir: Optional[Path] = None,
                overwrite: bool = False, tasks: Optional[Sequence[str]] = None,
                parts: Sequence[str] = ("variants", "ablation", "sweep"), datasets: Optional[dict] = None,
                progress: bool = True) -> CompareRun:
    """Run a recipe's comparison end to end and write the report (see report.py)."""
    import torch

    from .. import __version__
    from ..console import info, make_progress, warn
    from ..devices import pick_device
    from ..training.run import load_dataset
    from . import report
    from .ablation import ablation_configs, ablation_rows, combo_label, with_without_rows
    from .stats import MULTIPLE_COMPARISONS_NOTE, compare_all
    from .sweep import sweep_configs, sweep_rows

    t0 = time.perf_counter()
    src = str(getattr(recipe, "_source", None) or "recipe")
    section = section if section is not None else parse_compare(recipe.compare, src)
    tc = recipe.train
    if tc.n_folds < 2:
        raise ConfigError(f"{src}: train.n_folds: `hilbert compare` needs cross-validation (n_folds >= 2)")
    run_dir = Path(out_dir) if out_dir is not None else recipe.output_dir / (section.name or f"{recipe.name}_compare")
    if (run_dir / "report.md").exists() and not overwrite:
        raise ConfigError(f"{run_dir}: already holds a comparison (pass --overwrite, or --out elsewhere)")
    all_tasks = [t.name for t in recipe.tasks]
    task_names = list(tasks or section.tasks or all_tasks)
    unknown = [t for t in task_names if t not in all_tasks]
    if unknown:
        raise ConfigError(f"{src}: task(s) not in the recipe: {', '.join(unknown)}")
    specs = section.variant_specs(list(recipe.variants))
    bad_parts = [p for p in parts if p not in ("variants", "ablation", "sweep")]
    if bad_parts:
        raise ConfigError(f"unknown part(s): {', '.join(bad_parts)} (variants, ablation, sweep)")
    st = section.stats
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)

    datasets = dict(datasets or {})
    if PRIMARY not in datasets:
        datasets[PRIMARY] = load_dataset(recipe)
    datasets = _load_feature_sets(recipe, specs, datasets, task_names)
    grouped = datasets[PRIMARY].groups is not None

    def ablation_tasks():
        return [t for t in task_names if section.ablation.tasks is None or t in section.ablation.tasks]

    def sweep_tasks():
        return [t for t in task_names if section.sweep.tasks is None or t in section.sweep.tasks]

    # ---- what to run ---------------------------------------------------------------------
    from ..training.baselines import BASELINES

    # the simplest honest baselines sit beside the variants, on the same folds and features
    baselines = [b for b in BASELINES if b not in {s.name for s in specs}]
    row_names = [s.name for s in specs] + baselines
    plan: list[tuple[str, str, Any, RunSpec]] = []  # (part, task, tag, spec)
    for t in task_names:
        if "variants" in parts:
            for s in specs:
                plan.append(("variants", t, s.name, RunSpec(t, s.name, str(s.features) if s.features else PRIMARY,
                                                            s.model_config_for(recipe.model),
                                                            s.loss_config_for(recipe.loss))))
            for b in baselines:
                plan.append(("variants", t, b, RunSpec(t, b, PRIMARY, recipe.model, recipe.loss, baseline=b)))
        if "ablation" in parts and section.ablation.enabled and t in ablation_tasks():
            for combo, mc, lc in ablation_configs(section.ablation, recipe.model, recipe.loss):
                plan.append(("ablation", t, combo, RunSpec(t, combo_label(combo), PRIMARY, mc, lc)))
        if "sweep" in parts and section.sweep.enabled and t in sweep_tasks():
            for name, v, mc, lc in sweep_configs(section.sweep, recipe.model, recipe.loss):
                plan.append(("sweep", t, (name, v), RunSpec(t, f"{name}={v:g}", PRIMARY, mc, lc)))
    unique = list(dict.fromkeys(p[3].key for p in plan))
    info(f"[bold]compare {recipe.name}[/]: {datasets[PRIMARY].n} recordings, tasks {', '.join(task_names)}; "
         f"{len(plan)} table cells = {len(unique)} distinct cross-validations "
         f"({tc.n_folds}-fold{' grouped' if grouped else ''}, {device})")

    prog = make_progress() if progress else None
    bar = None
    engine = CompareEngine(datasets, tc, grouped=grouped, diagnostics=section.diagnostics.enabled,
                           on_fold=lambda spec, k, d: prog.update(bar, advance=1, status=f"{spec.task}/{spec.label} "
                                                                  f"fold {k + 1}: AUC {d['auc']:.3f}") if prog else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = {t: engine.frame(t) for t in task_names}
    for w in caught:
        warn(str(w.message))
    if prog is not None:
        prog.start()
        bar = prog.add_task("compare", total=sum(len(frames[json.loads(k)["task"]].splits) for k in unique), status="")
    results: dict[str, Any] = {}
    try:
        done: dict[tuple, RunResult] = {}
        for part, t, tag, spec in plan:
            done[(part, t, tag if not isinstance(tag, list) else tuple(tag))] = engine.run(spec)
    finally:
        if prog is not None:
            prog.stop()

    # ---- tables ----------------------------------------------------------------------------
    out_tasks: dict[str, Any] = {}
    for t in task_names:
        fr = frames[t]
        entry: dict[str, Any] = {"n": fr.n, "classes": fr.class_names, "n_folds": len(fr.splits),
                                 "class_counts": np.bincount(fr.y, minlength=len(fr.class_names)).tolist(),
                                 "dropped": engine.dropped.get(t, 0)}
        var_runs = {tag: r for (part, tt, tag), r in done.items() if part == "variants" and tt == t}
        if var_runs:
            rows = []
            for name in row_names:
                r = var_runs[name]
                ci = r.auc_interval(n_boot=st.n_boot, level=st.level, seed=st.seed)
                fold = r.fold_interval(level=st.level)
                rows.append({"name": name, "variant": r.spec.variant, **_backbones(datasets[r.spec.features]),
                             "auc": ci.auc, "auc_lo": ci.lo, "auc_hi": ci.hi, "auc_fold_mean": fold.auc,
                             "auc_fold_lo": fold.lo, "auc_fold_hi": fold.hi, "auc_fold_sd": r.fold_sd,
                             "ci_method": ci.method, "fold_ci_method": fold.method, "seconds": round(r.seconds, 2),
                             "loss": {k: getattr(r.spec.loss_config, k) for k in ("contrastive", "cka", "mi")}})
            entry["variants"] = rows
            pairs = None
            if st.reference is not None and st.reference in var_runs:
                pairs = [(st.reference, name) for name in row_names if name != st.reference]
            tests = compare_all(fr.y, {n: r.oof for n, r in var_runs.items()}, groups=fr.groups, method=st.test,
                                n_boot=st.n_boot, seed=st.seed, pairs=pairs)
            entry["tests"] = [x.as_dict() for x in tests]
            if section.diagnostics.enabled:
                entry["diagnostics"] = [_diag_row(name, r, st) for name, r in var_runs.items() if not r.spec.baseline]
        abl = {tag: r for (part, tt, tag), r in done.items() if part == "ablation" and tt == t}
        if abl:
            entry["ablation"] = ablation_rows(abl, n_boot=st.n_boot, level=st.level, seed=st.seed)
            entry["with_without"] = with_without_rows(abl, test=st.test, n_boot=st.n_boot, seed=st.seed)
            entry["ablation_folds_identical"] = _same_folds(list(abl.values()))
        sw = {tag: r for (part, tt, tag), r in done.items() if part == "sweep" and tt == t}
        if sw:
            entry["sweep"] = sweep_rows(sw, recipe.loss, n_boot=st.n_boot, level=st.level, seed=st.seed)
        out_tasks[t] = entry
    n_tests = max([len(e.get("tests", [])) for e in out_tasks.values()] + [0])
    seconds = time.perf_counter() - t0
    results = {
        "name": section.name or f"{recipe.name}_compare", "recipe": recipe.name, "tool_version": __version__,
        "device": device, "seconds": round(seconds, 2), "grouped": grouped, "n_folds": tc.n_folds, "seed": tc.seed,
        "stats": st.model_dump(mode="json"), "loss": recipe.loss.model_dump(mode="json"),
        "model": recipe.model.model_dump(mode="json"), "train": tc.model_dump(mode="json"),
        "ablation_settings": section.ablation.model_dump(mode="json"), "sweep_settings": section.sweep.model_dump(mode="json"),
        "distinct_runs": len(engine.runs),
        "multiple_comparisons": MULTIPLE_COMPARISONS_NOTE.format(
            m=n_tests, alpha=0.05, method="DeLong for binary tasks, else paired bootstrap" if st.test == "auto" else st.test),
        "tasks": out_tasks,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    report.write_all(run_dir, results, engine, done)
    info(f"[green]done[/] in {seconds:.1f} s -> {run_dir}/report.md")
    return CompareRun(run_dir=run_dir, results=results, engine=engine, seconds=seconds)


def _same_folds(runs: list[RunResult]) -> bool:
    if not runs:
        return True
    f0 = runs[0].fold_of
    return all(np.array_equal(r.fold_of, f0) for r in runs)


def _diag_row(name: str, r: RunResult, st) -> dict:
    from .stats import paired_test

    row: dict[str, Any] = {"name": name, "variant": r.spec.variant}
    for k in ("cka_a_j", "cka_t_j", "mi_a_j", "mi_t_j", "mi_gap", "mi_bound", "gate_entropy"):
        row[k] = r.diag.get(k, float("nan"))
    row["gate_mean"] = r.diag.get("gate_mean", [])
    row["auc_full"] = r.auc
    for m in ("audio_only", "text_only"):
        if m in r.masked:
            t = paired_test(r.y, r.oof, r.masked[m], groups=r.groups, names=("full", m), method=st.test,
                            n_boot=st.n_boot, seed=st.seed)
            row[f"auc_{m}"] = macro_auc(r.y, r.masked[m])
            row[f"p_full_vs_{m}"] = t.p
        else:
            row[f"auc_{m}"] = float("nan")
            row[f"p_full_vs_{m}"] = float("nan")
    from .stats import holm

    adj = holm([row["p_full_vs_audio_only"], row["p_full_vs_text_only"]])
    row["full_beats_both"] = bool(
        np.isfinite(adj).all() and (adj < 0.05).all()
        and row["auc_full"] > row["auc_audio_only"] and row["auc_full"] > row["auc_text_only"])
    return row
