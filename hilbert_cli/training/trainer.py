"""Training HILBERT models on index subsets of an in-memory FeatureDataset.

Per model (one per CV fold, or the final model) the work is: fit the preprocessing on its
training recordings (cached statistics), transform the padded tensors once, then mini-batches
are index selections (trimmed to the longest recording in the batch). Early stopping on the
validation AUC (ties: class-weighted CE) of an inner split; the best epoch's weights are
restored. Several models train at once as one stacked model (fit_models).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import autocast_dtype, pick_device
from ..nn.config import ModelConfig
from ..nn.model import HilbertModel, create_model
from .config import LossConfig, TrainConfig
from .data import FeatureDataset
from .metrics import macro_auc
from .augment import crop_mask
from .objective import class_weights, compute_loss, wide_penalty_coef
from .preprocess import Preprocessor
from .stack import clip_per_model, common_batch_size, compact, job_bytes, make_optimizer, parallel_models, waves

__all__ = ["FitJob", "FittedModel", "fit_model", "fit_models", "predict"]

OUTPUT_KEYS = ("logits", "z_a", "z_t", "z_j", "h_a", "h_t", "h_j", "gate")


@dataclass
class _Prepared:
    audio: torch.Tensor
    text: torch.Tensor
    mask: torch.Tensor
    lengths: np.ndarray
    doc: torch.Tensor  # [N, d_doc], d_doc = 0 when the model takes no document statistics

    def batch(self, idx: np.ndarray, device: str, lb: Optional[int] = None):
        """(audio, text, mask, doc) of recordings idx, trimmed to lb segments."""
        t = torch.as_tensor(idx, dtype=torch.long, device=self.audio.device)
        lb = lb or max(1, int(self.lengths[idx].max()))
        return (self.audio[t, :lb].to(device, non_blocking=True), self.text[t, :lb].to(device, non_blocking=True),
                self.mask[t, :lb].to(device, non_blocking=True), self.doc[t].to(device, non_blocking=True))


def _prepare(dataset: FeatureDataset, prep: Preprocessor, device: str) -> _Prepared:
    a, t = prep.transform(dataset.audio, dataset.text, dataset.mask)
    store = device if device.startswith("cuda") else "cpu"
    doc = prep.transform_doc(dataset.doc, dataset.n)
    return _Prepared(a.to(store), t.to(store), dataset.mask.to(store), dataset.lengths, doc.to(store))


@dataclass
class FittedModel:
    """A trained model plus the preprocessing it expects (fitted on its training recordings)."""

    model: HilbertModel
    prep: Preprocessor
    model_config: ModelConfig
    loss_config: LossConfig
    class_names: list[str]
    device: str = "cpu"
    best_epoch: int = 0
    epochs_run: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    _prepared: Optional[_Prepared] = field(default=None, repr=False)

    def forward(self, dataset: FeatureDataset, idx, *, drop_modality: Optional[str] = None,
                batch_size: int = 256) -> dict[str, np.ndarray]:
        """Eval-mode forward over dataset recordings idx -> numpy arrays: probs, logits, z_*, h_*, gate."""
        prepared = self._prepared if (self._prepared is not None and self._prepared.audio.shape[0] == dataset.n) \
            else _prepare(dataset, self.prep, self.device)
        idx = np.asarray(idx, np.int64)
        self.model.eval()
        chunks: dict[str, list] = {k: [] for k in OUTPUT_KEYS}
        amp = autocast_dtype(self.device)
        with torch.no_grad():
            for s in range(0, len(idx), batch_size):
                a, t, m, d = prepared.batch(idx[s:s + batch_size], self.device)
                with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                    out = self.model(a, t, m, doc=d, drop_modality=drop_modality)
                for k in OUTPUT_KEYS:
                    chunks[k].append(out[k].float().cpu())
        res = {k: (torch.cat(v).numpy() if v else np.zeros((0, 0), np.float32)) for k, v in chunks.items()}
        res["probs"] = torch.softmax(torch.from_numpy(res["logits"]), dim=-1).numpy() if len(idx) else res["logits"]
        return res

    def predict_proba(self, dataset: FeatureDataset, idx, *, drop_modality: Optional[str] = None) -> np.ndarray:
        return self.forward(dataset, idx, drop_modality=drop_modality)["probs"]

    def release(self) -> None:
        """Drop the fold's transformed copy of the dataset (memory)."""
        self._prepared = None


def predict(fitted: FittedModel, dataset: FeatureDataset, idx) -> np.ndarray:
    return fitted.predict_proba(dataset, idx)


@dataclass
class FitJob:
    """One model to train. val_idx (non-empty): early stopping on it, best weights restored.
    n_epochs: train exactly this many epochs (the final model; no validation)."""

    train_idx: np.ndarray
    val_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seed: int = 0
    n_epochs: Optional[int] = None


@dataclass
class _Slot:
    """Training state of one model of a stack."""

    job_index: int
    job: FitJob
    prep: Preprocessor
    prepared: _Prepared
    weights: torch.Tensor
    rng: np.random.Generator
    epochs: int
    early: bool
    epoch: int = 0
    batches: Optional[np.ndarray] = None
    step: int = 0
    sums: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    best_key: Optional[tuple] = None
    best_epoch: int = 0
    best_state: Optional[dict] = None
    bad: int = 0
    wide_coef: float = 0.0
    swa_state: Optional[dict] = None  # running mean of the last epochs' weights (TrainConfig.swa_epochs)
    swa_n: int = 0

    def next_batch(self, b: int) -> np.ndarray:
        if self.batches is None or self.step >= len(self.batches):
            tr = self.job.train_idx
            perm = tr[self.rng.permutation(len(tr))]
            n_b = max(1, len(tr) // b)
            self.batches, self.step, self.sums = perm[: n_b * b].reshape(n_b, b), 0, {}
            self.epoch += 1
        self.step += 1
        return self.batches[self.step - 1]

    @property
    def epoch_done(self) -> bool:
        return self.batches is not None and self.step >= len(self.batches)


def fit_models(dataset: FeatureDataset, task: str, jobs: Sequence[FitJob], model_config: ModelConfig,
               train_config: TrainConfig, loss_config: Optional[LossConfig] = None, *,
               device: Optional[str] = None, on_fitted: Optional[Callable[[int, "FittedModel"], None]] = None,
               on_epoch: Optional[Callable[[int, dict], None]] = None) -> list[FittedModel]:
    """Train one model per job for `task`, several at once.

    Models of a wave are stacked (torch.func.stack_module_state) and trained by one vmapped
    forward/backward: every step advances each of them by one mini-batch of its own recordings,
    with its own class weights, gradient clipping and early stopping. Compute per model is what
    it would be alone; the per-operation overhead is shared, which on 2 CPU cores makes a
    25-fold CV 1.7x (waves of 8) to 3x (one stack) faster, and far more on a GPU. A model that stops early leaves the
    stack. The models never see each other's data: a test trains the same folds alone and
    together and gets the same weights.

    Preprocessing is fitted per job on train_idx + val_idx (features only). on_fitted(i, fitted)
    is called as soon as job i is done, while its preprocessed features are still in memory
    (fitted.forward is fast then); they are released after the call. Returns the FittedModels
    in job order. Deterministic for a given seed and train_config.parallel_folds.
    """
    from torch.func import functional_call, stack_module_state, vmap

    mc, tc = model_config, train_config
    lc = loss_config or LossConfig()
    device = pick_device(device or tc.device)
    y_all = dataset.labels[task]
    names = list(dataset.class_names[task])
    n_classes = len(names)
    jobs = [FitJob(np.asarray(j.train_idx, np.int64), np.asarray(j.val_idx, np.int64), int(j.seed), j.n_epochs)
            for j in jobs]
    for j in jobs:
        if (y_all[j.train_idx] < 0).any() or (len(j.val_idx) and (y_all[j.val_idx] < 0).any()):
            raise ValueError(f"fit_models: recordings without a {task!r} label in train/val indices")
    b = common_batch_size([len(j.train_idx) for j in jobs], tc.batch_size)
    y_dev = torch.as_tensor(np.maximum(y_all, 0), dtype=torch.long, device=device)
    amp = autocast_dtype(device) if tc.amp else None
    k_max = parallel_models(len(jobs), job_bytes(dataset, mc, b), device, tc.parallel_folds)
    results: list[Optional[FittedModel]] = [None] * len(jobs)

    for wave in waves(len(jobs), k_max):
        t0 = time.perf_counter()
        slots, models = [], []
        for i in wave:
            j = jobs[i]
            prep = Preprocessor.fit(dataset, np.union1d(j.train_idx, j.val_idx), standardize=mc.standardize,
                                    pca=mc.input_pca, doc_stats=mc.doc_stats)
            weights = (class_weights(y_all[j.train_idx], n_classes) if lc.class_weighted
                       else torch.ones(n_classes)).to(device)
            early = j.n_epochs is None and len(j.val_idx) > 0
            slots.append(_Slot(i, j, prep, _prepare(dataset, prep, device), weights, np.random.default_rng(j.seed),
                               epochs=j.n_epochs if j.n_epochs is not None else tc.max_epochs, early=early))
            slots[-1].wide_coef = wide_penalty_coef(len(j.train_idx), lc)
            torch.manual_seed(j.seed)
            models.append(create_model(mc, prep.d_audio, prep.d_text, n_classes, prep.d_doc).to(device))
            if models[-1].wide is not None:
                models[-1].wide.set_scaler(_pooled_stats(slots[-1].prepared, np.union1d(j.train_idx, j.val_idx), device))
        base = copy.deepcopy(models[0]).to("meta")
        params, buffers = stack_module_state(models)
        del models
        opt = make_optimizer(params, tc)
        torch.manual_seed(slots[0].job.seed)  # the wave's dropout stream

        def loss_fn(p, bufs, a, t, m, d, y, w, wc):
            out = functional_call(base, (p, bufs), (a, t, m), {"doc": d})
            return compute_loss(out, y, variant=mc.variant, loss_config=lc, weights=w, wide_coef=wc)

        vloss = vmap(loss_fn, randomness="different")

        def state_of(k: int) -> dict:
            """A copy of model k's state dict (parameters and buffers) out of the stack."""
            return {n: v[k].detach().clone() for d in (params, buffers) for n, v in d.items()}

        while slots:
            base.train()
            idx = [s.next_batch(b) for s in slots]
            lb = max(1, max(int(s.prepared.lengths[i].max()) for s, i in zip(slots, idx)))
            a, t, m, d = (torch.stack(x) for x in zip(*(s.prepared.batch(i, device, lb) for s, i in zip(slots, idx))))
            if tc.crop_min < 1.0:  # bag augmentation: each recording trains on a random part of itself
                m = torch.stack([crop_mask(m[k], s.rng, tc.crop_min, tc.crop_mode) for k, s in enumerate(slots)])
            yb = y_dev[torch.as_tensor(np.stack(idx), device=device)]
            w = torch.stack([s.weights for s in slots])
            wc = torch.tensor([s.wide_coef for s in slots], dtype=torch.float32, device=device)
            with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                total, parts = vloss(params, buffers, a, t, m, d, yb, w, wc)
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            if tc.grad_clip > 0:
                clip_per_model(params, tc.grad_clip)
            opt.step()
            vals = torch.stack([v.float() for v in parts.values()], 1).cpu().numpy()
            finished = []
            for k, s in enumerate(slots):
                for c, key in enumerate(parts):
                    s.sums[key] = s.sums.get(key, 0.0) + float(vals[k, c])
            # models whose epoch ended validate together (one vmapped forward)
            to_val = [k for k, s in enumerate(slots) if s.epoch_done and s.early]
            if to_val:
                base.eval()
                with torch.no_grad():
                    val_recs = dict(zip(to_val, _validate(base, params, buffers, [slots[k] for k in to_val], to_val,
                                                          y_all, y_dev, device, amp)))
            for k, s in enumerate(slots):
                if not s.epoch_done:
                    continue
                rec = {"epoch": s.epoch, **{f"train_{key}": v / len(s.batches) for key, v in s.sums.items()}}
                if s.early:
                    rec.update(val_recs[k])
                    use_auc = tc.early_stopping == "auc" and np.isfinite(rec["val_auc"])
                    key = (round(rec["val_auc"], 4) if use_auc else 0.0, -round(rec["val_ce"], 4))
                    if s.best_key is None or key > s.best_key:
                        s.best_key, s.best_epoch, s.bad = key, s.epoch, 0
                        s.best_state = state_of(k)
                    else:
                        s.bad += 1
                if not s.early and tc.swa_epochs and s.epoch > s.epochs - tc.swa_epochs:
                    s.swa_n += 1
                    cur = state_of(k)
                    s.swa_state = cur if s.swa_state is None else \
                        {n: v + (cur[n] - v) / s.swa_n if v.is_floating_point() else cur[n] for n, v in s.swa_state.items()}
                s.history.append(rec)
                if on_epoch is not None:
                    on_epoch(s.job_index, rec)
                if s.epoch >= s.epochs or (s.early and tc.patience and s.bad >= tc.patience
                                           and s.epoch >= tc.min_epochs):
                    finished.append(k)
            if not finished:
                continue
            for k in finished:
                s = slots[k]
                state = s.best_state if (s.early and s.best_state is not None) else \
                    (s.swa_state if s.swa_state is not None else state_of(k))
                fitted = _fitted_from_state(state, s, mc, lc, names, device, time.perf_counter() - t0)
                if on_fitted is not None:
                    on_fitted(s.job_index, fitted)
                fitted.release()
                results[s.job_index] = fitted
            keep = [k for k in range(len(slots)) if k not in finished]
            slots = [slots[k] for k in keep]
            if slots:
                params, buffers, opt = compact(params, buffers, opt, keep, tc)
    return results  # type: ignore[return-value]


def _pooled_stats(prepared: _Prepared, idx: np.ndarray, device: str) -> torch.Tensor:
    """The wide path's inputs (nn/wide.py pooled_stats) of recordings idx, whole recordings."""
    from ..nn.wide import pooled_stats

    out = []
    for s in range(0, len(idx), 256):
        a, t, m, _ = prepared.batch(idx[s:s + 256], device)
        out.append(pooled_stats(a.float(), t.float(), m, m))
    return torch.cat(out)


def _validate(base, params: dict, buffers: dict, slots: list[_Slot], ks: list[int], y_all: np.ndarray,
              y_dev: torch.Tensor, device: str, amp) -> list[dict]:
    """Class-weighted CE and macro AUC of models ks of the stack, each on its own validation
    recordings, in one vmapped eval-mode forward (shorter validation sets padded by repeating
    their first recording; padded rows are dropped)."""
    from torch.func import functional_call, vmap

    kt = torch.as_tensor(ks, dtype=torch.long, device=next(iter(params.values())).device)
    p = {n: v.detach()[kt] for n, v in params.items()}
    bufs = {n: v[kt] for n, v in buffers.items()}
    fwd = vmap(lambda p_, b_, a_, t_, m_, d_: functional_call(base, (p_, b_), (a_, t_, m_), {"doc": d_})["logits"]
               .float())
    vmax = max(len(s.job.val_idx) for s in slots)
    ce = [0.0] * len(slots)
    probs: list[list[np.ndarray]] = [[] for _ in slots]
    for st in range(0, vmax, 256):
        chunks = [s.job.val_idx[st:st + 256] for s in slots]
        width = max(len(c) for c in chunks)
        padded = [np.concatenate([c, np.full(width - len(c), s.job.val_idx[0])]) for c, s in zip(chunks, slots)]
        lb = max(1, max(int(s.prepared.lengths[c].max()) for c, s in zip(padded, slots)))
        a, t, m, d = (torch.stack(x) for x in zip(*(s.prepared.batch(c, device, lb) for c, s in zip(padded, slots))))
        with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
            logits = fwd(p, bufs, a, t, m, d)
        for i, (c, s) in enumerate(zip(chunks, slots)):
            if not len(c):
                continue
            lg = logits[i, : len(c)]
            ce[i] += float(F.cross_entropy(lg, y_dev[torch.as_tensor(c, device=device)], weight=s.weights,
                                           reduction="sum"))
            probs[i].append(torch.softmax(lg, dim=-1).cpu().numpy())
    return [{"val_ce": ce[i] / len(s.job.val_idx), "val_auc": macro_auc(y_all[s.job.val_idx], np.concatenate(probs[i]))}
            for i, s in enumerate(slots)]


def _fitted_from_state(state: dict, s: _Slot, mc: ModelConfig, lc: LossConfig, names: list[str], device: str,
                       seconds: float) -> FittedModel:
    with torch.device("meta"):
        model = create_model(mc, s.prep.d_audio, s.prep.d_text, len(names), s.prep.d_doc)
    model = model.to_empty(device=device)
    model.load_state_dict(state)
    model.eval()
    best = s.best_epoch if (s.early and s.best_state is not None) else len(s.history)
    return FittedModel(model=model, prep=s.prep, model_config=mc, loss_config=lc, class_names=list(names),
                       device=device, best_epoch=best, epochs_run=len(s.history), history=s.history,
                       seconds=seconds, _prepared=s.prepared)


def fit_model(dataset: FeatureDataset, task: str, train_idx, model_config: ModelConfig, train_config: TrainConfig,
              loss_config: Optional[LossConfig] = None, *, val_idx=None, n_epochs: Optional[int] = None,
              seed: Optional[int] = None, device: Optional[str] = None, keep_prepared: bool = False,
              on_epoch: Optional[Callable[[dict], None]] = None) -> FittedModel:
    """Train one model on dataset recordings train_idx for `task` (fit_models with one job).

    val_idx (non-empty): early stopping on it, best weights restored. n_epochs: train exactly
    this many epochs (the final model, no validation). keep_prepared keeps the transformed
    tensors for fast predictions.
    """
    job = FitJob(np.asarray(train_idx, np.int64), np.asarray([] if val_idx is None else val_idx, np.int64),
                 train_config.seed if seed is None else seed, n_epochs)
    kept: dict = {}

    def keep(_i, fitted):
        if keep_prepared:
            kept["prepared"] = fitted._prepared

    fitted = fit_models(dataset, task, [job], model_config, train_config, loss_config, device=device,
                        on_fitted=keep, on_epoch=(lambda _i, rec: on_epoch(rec)) if on_epoch else None)[0]
    fitted._prepared = kept.get("prepared")
    return fitted
