"""The one experiment runner of `hilbert train` and `hilbert compare`.

An Experiment holds the features datasets of a recipe, makes each task's folds once and
cross-validates runs over them (RunSpec -> RunResult), caching identical configurations.
Every run of a task - whatever its variant, losses, baseline or features (e.g. a CLAP
baseline on its own features) - uses the same folds, made over the recordings that every
dataset of the experiment covers, so out-of-fold predictions are paired recording by
recording (what the paired tests need), and the `linear` / `segment-linear` / `length-only` baselines
(training/baselines.py) sit on exactly the model's folds.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..nn.config import ModelConfig
from ..training.config import LossConfig, TrainConfig
from ..training.metrics import macro_auc
from .stats import AucInterval, bootstrap_auc_ci, fold_auc_ci

__all__ = ["PRIMARY", "TaskFrame", "RunSpec", "RunResult", "Experiment", "load_dataset"]

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
    """One cross-validation: a task, a row label, a features dataset and the configs (or a baseline)."""

    task: str
    label: str
    features: str
    model_config: ModelConfig
    loss_config: LossConfig
    #: a training.baselines kind (training.baselines.BASELINES): run that instead of the model
    baseline: Optional[str] = None

    @property
    def variant(self) -> str:
        return self.baseline or self.model_config.variant

    @property
    def key(self) -> str:
        """Identical configurations share a key (and so one cross-validation)."""
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
    """A run's CVResult (dataset order) and its out-of-fold predictions in frame order."""

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


#: diagnostics(task, sink) -> a run_cv diagnostics_fn (evaluation.diagnostics.make_diagnostics_fn)
DiagnosticsFactory = Callable[..., Callable]


class Experiment:
    """Holds the datasets, makes the shared folds per task once, runs (and caches) CV runs.

    diagnostics: a factory like evaluation.diagnostics.make_diagnostics_fn, or None/False for
    none. on_fold(spec, k, info) after each fold; on_epoch(spec, k, record) after each epoch.
    """

    def __init__(self, datasets: dict, train_config: TrainConfig, *, grouped: bool = True,
                 diagnostics: Optional[DiagnosticsFactory] = None,
                 on_fold: Optional[Callable[[RunSpec, int, dict], None]] = None,
                 on_epoch: Optional[Callable[[RunSpec, int, dict], None]] = None):
        if PRIMARY not in datasets:
            raise ValueError(f"datasets must include the recipe's dataset under {PRIMARY!r}")
        self.datasets = datasets
        self.train_config = train_config
        self.grouped = grouped
        self.diagnostics = diagnostics or None
        self.on_fold = on_fold
        self.on_epoch = on_epoch
        self._frames: dict[str, TaskFrame] = {}
        self._runs: dict[str, RunResult] = {}
        self._where: dict[str, dict[str, int]] = {}  # dataset key -> {recording_id: position}
        self.dropped: dict[str, int] = {}
        if train_config.threads:
            import torch

            torch.set_num_threads(train_config.threads)

    def positions(self, name: str, ids: Sequence[str]) -> np.ndarray:
        """Positions of recordings ids in dataset `name`."""
        ds = self.datasets[name]
        where = self._where.get(name)
        if where is None or len(where) != ds.n:
            where = self._where[name] = {r: i for i, r in enumerate(ds.recording_ids)}
        return np.array([where[r] for r in ids], np.int64)

    # ---- folds ----------------------------------------------------------------------------
    def frame(self, task: str) -> TaskFrame:
        """The task's recordings and folds (made on the first call, then always the same)."""
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
            other = np.asarray(ds.class_names[task])[ds.labels[task][self.positions(name, ids)]]
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
        """Cross-validate spec over its task's folds (once per distinct configuration)."""
        key = spec.key
        if key in self._runs:
            return self._runs[key]
        from ..training.cv import run_cv

        fr = self.frame(spec.task)
        ds = self.datasets.get(spec.features)
        if ds is None:
            raise ConfigError(f"features dataset {spec.features!r} is not loaded")
        pos = self.positions(spec.features, fr.rec_ids)
        if spec.task not in ds.labels or (ds.labels[spec.task][pos] < 0).any():
            # a features dataset loaded without this task's labels: attach the frame's labels
            vals: list = [None] * ds.n
            for p, yy in zip(pos, fr.y):
                vals[int(p)] = int(yy)
            ds.set_labels(spec.task, vals, fr.class_names)
        splits = [(pos[tr], pos[te]) for tr, te in fr.splits]
        sink: list = []
        diag_fn = self.diagnostics(spec.task, sink=sink) if self.diagnostics is not None else None

        def on_fold(k, d):
            if self.on_fold is not None:
                self.on_fold(spec, k, d)

        def on_epoch(k, rec):
            if self.on_epoch is not None:
                self.on_epoch(spec, k, rec)

        t0 = time.perf_counter()
        if spec.baseline:
            from ..training.baselines import run_baseline_cv

            cv, sink = run_baseline_cv(ds, spec.task, splits, spec.baseline), []
            for k, a in enumerate(cv.fold_aucs):
                on_fold(k, {"auc": a})
        else:
            cv = run_cv(ds, spec.task, spec.model_config, self.train_config, splits, spec.loss_config,
                        fold_callback=on_fold, epoch_callback=on_epoch, diagnostics_fn=diag_fn)
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
        diag = {}
        if sink:
            from .diagnostics import summarise_folds

            diag = summarise_folds(cv.diagnostics)
        res = RunResult(spec, fr, cv, oof, fold_of, masked, diag, seconds=time.perf_counter() - t0)
        self._runs[key] = res
        return res

    @property
    def runs(self) -> dict[str, RunResult]:
        return dict(self._runs)


def load_dataset(recipe):
    """The recipe's FeatureDataset (synthetic, or features + labels read and padded once)."""
    from ..console import warn
    from ..training.data import FeatureDataset
    from ..training.synthetic import make_synthetic

    d = recipe.data
    tasks = recipe.tasks
    if d.synthetic is not None:
        s = d.synthetic
        ds = make_synthetic(s.n_recordings, tasks=[(t.name, t.signal, t.n_classes or len(t.classes or []) or 2)
                                                   for t in tasks],
                            min_segments=s.min_segments, max_segments=s.max_segments, d_audio=s.d_audio,
                            d_text=s.d_text, n_groups=s.n_groups, strength=s.strength, seed=s.seed)
        for t in tasks:
            if t.classes:
                ds.class_names[t.name] = list(t.classes)
        return ds
    recipe.check_files(getattr(recipe, "_source", None) or "recipe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FeatureDataset.from_parquet(d.features, d.labels, tasks={t.name: t.label_column for t in tasks},
                                         id_column=d.id_column, group_column=d.group_column,
                                         max_segments=recipe.train.max_segments,
                                         class_names={t.name: t.classes for t in tasks if t.classes})
    for w in caught:
        warn(str(w.message))
    for key in ("audio_model", "text_model"):
        want = getattr(d, key)
        got = ds.features_metadata.get(key)
        got = got.get("alias") if isinstance(got, dict) else got
        if want and got and want != got:
            raise ConfigError(f"data.{key}: the recipe expects {want!r} but {d.features} was embedded with {got!r}")
    for i, t in enumerate(tasks):
        got = len(ds.class_names[t.name])
        if t.n_classes is not None and got > t.n_classes:
            raise ConfigError(f"tasks[{i}] {t.name!r}: the recipe says {t.n_classes} classes but {d.labels} has "
                              f"{got} ({', '.join(ds.class_names[t.name])})")
        if t.n_classes is not None and got < t.n_classes:
            warn(f"task {t.name!r}: {got} of the recipe's {t.n_classes} classes occur in the labels")
        n_lab = int((ds.labels[t.name] >= 0).sum())
        if n_lab < 4:
            raise InputError(f"task {t.name!r}: only {n_lab} recording(s) with both features and a label")
    return ds
