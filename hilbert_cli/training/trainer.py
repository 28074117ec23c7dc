"""Training one HILBERT model on index subsets of an in-memory FeatureDataset.

Per fold the work is: fit the preprocessing on the training recordings (cached statistics),
transform the padded tensors once, then mini-batches are index selections (trimmed to the
longest recording in the batch). Early stopping on the class-weighted validation loss of an
inner split; the best epoch's weights are restored. Deterministic for a given seed.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import autocast_dtype, pick_device
from ..nn import losses as L
from ..nn.model import HilbertModel, build_model
from .config import LossConfig, ModelConfig, TrainConfig
from .data import FeatureDataset, Preprocessor
from .metrics import macro_auc

__all__ = ["FittedModel", "fit_model", "compute_loss", "class_weights", "predict"]

OUTPUT_KEYS = ("logits", "z_a", "z_t", "z_j", "h_a", "h_t", "h_j", "gate")


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class frequency, n / (C * count_c) (classes absent from y get weight 1)."""
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def compute_loss(out: dict, y: torch.Tensor, *, variant: str, loss_config: LossConfig,
                 weights: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict[str, float]]:
    """total = CE + l1 * contrastive + l2 * CKA + l3 * MI (+ load balancing); parts as floats."""
    lc = loss_config
    ce = F.cross_entropy(out["logits"].float(), y, weight=weights, label_smoothing=lc.label_smoothing)
    total = ce
    parts = {"ce": float(ce.detach())}
    b = y.shape[0]
    if b >= 3 and variant == "hilbert":
        za, zt, zj = out["z_a"], out["z_t"], out["z_j"]
        if lc.contrastive > 0:
            con = L.dual_contrastive(za, zt, zj, lc.temperature)
            total = total + lc.contrastive * con
            parts["contrastive"] = float(con.detach())
        if lc.cka > 0:
            cka = L.cka_loss(za, zt, zj)
            total = total + lc.cka * cka
            parts["cka"] = float(cka.detach())
        if lc.mi > 0:
            mi = L.mi_balance(za, zt, zj, lc.temperature)
            total = total + lc.mi * mi
            parts["mi"] = float(mi.detach())
    elif b >= 3 and variant == "contrastive_moe" and lc.contrastive > 0:
        con = L.audio_text_contrastive(out["z_a"], out["z_t"], lc.temperature)
        total = total + lc.contrastive * con
        parts["contrastive"] = float(con.detach())
    aux = out.get("aux_loss")
    if aux is not None and aux.requires_grad and lc.load_balance > 0:
        total = total + lc.load_balance * aux
        parts["load_balance"] = float(aux.detach())
    parts["total"] = float(total.detach())
    return total, parts


@dataclass
class _Prepared:
    audio: torch.Tensor
    text: torch.Tensor
    mask: torch.Tensor
    lengths: np.ndarray

    def batch(self, idx: np.ndarray, device: str):
        t = torch.as_tensor(idx, dtype=torch.long, device=self.audio.device)
        lb = max(1, int(self.lengths[idx].max()))
        return (self.audio[t, :lb].to(device, non_blocking=True), self.text[t, :lb].to(device, non_blocking=True),
                self.mask[t, :lb].to(device, non_blocking=True))


def _prepare(dataset: FeatureDataset, prep: Preprocessor, device: str) -> _Prepared:
    a, t = prep.transform(dataset.audio, dataset.text, dataset.mask)
    store = device if device.startswith("cuda") else "cpu"
    return _Prepared(a.to(store), t.to(store), dataset.mask.to(store), dataset.lengths)


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
                a, t, m = prepared.batch(idx[s:s + batch_size], self.device)
                with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                    out = self.model(a, t, m, drop_modality=drop_modality)
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


def _batches(idx: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = idx[rng.permutation(len(idx))]
    n_b = max(1, int(np.ceil(len(perm) / batch_size)))
    return [b for b in np.array_split(perm, n_b) if len(b)]


def fit_model(dataset: FeatureDataset, task: str, train_idx, model_config: ModelConfig, train_config: TrainConfig,
              loss_config: Optional[LossConfig] = None, *, val_idx=None, n_epochs: Optional[int] = None,
              seed: Optional[int] = None, device: Optional[str] = None, keep_prepared: bool = False,
              on_epoch: Optional[Callable[[dict], None]] = None) -> FittedModel:
    """Train one model on dataset recordings train_idx for `task`.

    val_idx (non-empty): early stopping on its class-weighted CE, best weights restored.
    n_epochs: train exactly this many epochs (used for the final model, no validation).
    The preprocessing is fitted on train_idx plus val_idx (features only, never labels of
    test recordings). keep_prepared keeps the transformed tensors for fast predictions.
    """
    t0 = time.perf_counter()
    mc, tc = model_config, train_config
    lc = loss_config or LossConfig()
    seed = tc.seed if seed is None else seed
    device = pick_device(device or tc.device)
    y_all = dataset.labels[task]
    names = dataset.class_names[task]
    n_classes = len(names)
    train_idx = np.asarray(train_idx, np.int64)
    val_idx = np.asarray([] if val_idx is None else val_idx, np.int64)
    if (y_all[train_idx] < 0).any() or (len(val_idx) and (y_all[val_idx] < 0).any()):
        raise ValueError(f"fit_model: recordings without a {task!r} label in train/val indices")

    prep = Preprocessor.fit(dataset, np.union1d(train_idx, val_idx), standardize=mc.standardize, pca=mc.input_pca)
    prepared = _prepare(dataset, prep, device)
    torch.manual_seed(seed)
    model = build_model(mc, prep.d_audio, prep.d_text, n_classes).to(device)
    try:  # fused AdamW: one kernel for all parameters (far less per-step overhead on CPU)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    weights = (class_weights(y_all[train_idx], n_classes) if lc.class_weighted else torch.ones(n_classes)).to(device)
    y_dev = torch.as_tensor(np.maximum(y_all, 0), dtype=torch.long, device=device)
    rng = np.random.default_rng(seed)
    amp = autocast_dtype(device) if tc.amp else None
    epochs = n_epochs if n_epochs is not None else tc.max_epochs
    early = n_epochs is None and len(val_idx) > 0
    best_key, best_epoch, best_state, bad = None, 0, None, 0
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        model.train()
        sums: dict[str, float] = {}
        batches = _batches(train_idx, tc.batch_size, rng)
        for b in batches:
            a, t, m = prepared.batch(b, device)
            yb = y_dev[torch.as_tensor(b, device=device)]
            with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                out = model(a, t, m)
            loss, parts = compute_loss(out, yb, variant=mc.variant, loss_config=lc, weights=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        rec = {"epoch": epoch, **{f"train_{k}": v / len(batches) for k, v in sums.items()}}
        if early:
            model.eval()
            with torch.no_grad():
                vl, vprobs = 0.0, []
                for s in range(0, len(val_idx), 256):
                    vb = val_idx[s:s + 256]
                    a, t, m = prepared.batch(vb, device)
                    with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                        out = model(a, t, m)
                    logits = out["logits"].float()
                    vl += float(F.cross_entropy(logits, y_dev[torch.as_tensor(vb, device=device)],
                                                weight=weights, reduction="sum"))
                    vprobs.append(torch.softmax(logits, dim=-1).cpu().numpy())
            rec["val_ce"] = vl / max(len(val_idx), 1)
            rec["val_auc"] = macro_auc(y_all[val_idx], np.concatenate(vprobs))
            use_auc = tc.early_stopping == "auc" and np.isfinite(rec["val_auc"])
            key = (round(rec["val_auc"], 4) if use_auc else 0.0, -round(rec["val_ce"], 4))
            if best_key is None or key > best_key:
                best_key, best_epoch, bad = key, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if early and tc.patience and bad >= tc.patience and epoch >= tc.min_epochs:
            break
    if early and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    model.eval()
    return FittedModel(model=model, prep=prep, model_config=mc, loss_config=lc, class_names=list(names),
                       device=device, best_epoch=best_epoch, epochs_run=len(history), history=history,
                       seconds=time.perf_counter() - t0, _prepared=prepared if keep_prepared else None)
