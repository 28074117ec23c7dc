"""Models trained together (fit_models stacks them with torch.func.vmap) are the models trained alone.

Dropout off (its random stream is shared by a stack), everything else on: each model's own
batches, class weights, per-model gradient clipping, AdamW state, and models leaving the stack
at different epochs (the stack is compacted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures_train import accelerators, tiny_model, tiny_train, torch_threads


@pytest.fixture(scope="module")
def data():
    from hilbert_cli.training.synthetic import make_synthetic

    return make_synthetic(90, tasks=[("y", "audio", 3)], d_audio=12, d_text=10, min_segments=3, max_segments=9, seed=3)


def _jobs(ds, epochs):
    from hilbert_cli.training.trainer import FitJob

    rng = np.random.default_rng(0)
    # equal training-set sizes: the common batch size is then the same alone and together
    return [FitJob(np.sort(rng.choice(ds.n, 60, replace=False)), seed=11 + i, n_epochs=e) for i, e in enumerate(epochs)]


def _weights(fitted):
    return {k: v.detach().clone() for k, v in fitted.model.state_dict().items()}


@pytest.mark.parametrize("variant,device", [("hilbert", "cpu"), ("transfer_moe", "cpu")]
                         + [("hilbert", d) for d in accelerators()])
def test_models_trained_together_equal_models_trained_alone(data, variant, device):
    from hilbert_cli.training.trainer import fit_models

    mc = tiny_model(variant, dropout=0.0)
    # grad_clip small enough that every step clips: the norm must be per model, not over the stack
    tc = tiny_train(batch_size=16, grad_clip=0.05, lr=3e-3, device=device, amp=False)
    jobs = _jobs(data, [2, 5, 3])  # they leave the stack after 2, 3 and 5 epochs
    with torch_threads(1):
        together = fit_models(data, "y", jobs, mc, tc.model_copy(update={"parallel_folds": 3}))
        alone = [fit_models(data, "y", [j], mc, tc.model_copy(update={"parallel_folds": 1}))[0] for j in jobs]
    for t, a, j in zip(together, alone, jobs):
        assert t.epochs_run == a.epochs_run == j.n_epochs
        wt, wa = _weights(t), _weights(a)
        assert wt.keys() == wa.keys()
        # float noise (batched vs single matmuls, amplified by Adam on near-zero gradients) stays
        # below 1e-4 here; a leak between models (shared clip norm, data, optimizer state) moves
        # weights by ~lr per step = 3e-3
        for k in wt:
            torch.testing.assert_close(wt[k], wa[k], rtol=0, atol=3e-4, msg=k)
        probe = np.arange(20)
        # on CUDA the same 1e-4 weight noise moves probabilities by up to ~4e-4 (seen on an H100)
        atol = 5e-5 if device == "cpu" else 2e-3
        np.testing.assert_allclose(t.predict_proba(data, probe), a.predict_proba(data, probe), atol=atol)
    # and the stack did not just train one model three times
    w0, w1 = _weights(together[0]), _weights(together[1])
    assert any(not torch.allclose(w0[k], w1[k]) for k in w0)


def test_early_stopping_restores_each_models_best_epoch(data):
    from hilbert_cli.training.trainer import FitJob, fit_models

    rng = np.random.default_rng(1)
    jobs = []
    for i in range(3):
        perm = rng.permutation(data.n)
        jobs.append(FitJob(np.sort(perm[:60]), np.sort(perm[60:80]), seed=i))
    tc = tiny_train(max_epochs=12, patience=2, min_epochs=2, parallel_folds=3)
    seen: list[int] = []
    with torch_threads(1):
        fitted = fit_models(data, "y", jobs, tiny_model("hilbert"), tc,
                            on_fitted=lambda i, f: seen.append(i) or f.predict_proba(data, [0]))
    assert sorted(seen) == [0, 1, 2]
    for f in fitted:
        assert 1 <= f.best_epoch <= f.epochs_run <= 12
        hist = f.history
        assert [h["epoch"] for h in hist] == list(range(1, f.epochs_run + 1))
        keys = [(round(h["val_auc"], 4), -round(h["val_ce"], 4)) for h in hist]
        assert keys.index(max(keys)) + 1 == f.best_epoch
        if f.epochs_run < 12:  # stopped early: exactly `patience` epochs without improvement
            assert f.epochs_run - f.best_epoch == 2
        assert f._prepared is None  # released after on_fitted


def test_common_batch_size_and_waves():
    from hilbert_cli.training.stack import common_batch_size, waves as _waves

    assert common_batch_size([406, 410, 409], 32) == 31  # 13 batches of 31 for the smallest
    assert common_batch_size([30], 8) == 7
    assert common_batch_size([5], 32) == 5
    waves = _waves(25, 8)
    assert [len(w) for w in waves] == [6, 6, 7, 6]
    assert sorted(i for w in waves for i in w) == list(range(25))
    assert [len(w) for w in _waves(3, 8)] == [3]


def test_keep_mask_rate_and_vmap_randomness():
    from torch.func import vmap

    from hilbert_cli.nn.dropout import Dropout, keep_mask

    torch.manual_seed(0)
    m = keep_mask((400, 50, 37), 0.1, "cpu")
    assert m.shape == (400, 50, 37)
    assert abs(m.float().mean().item() - 0.9) < 0.003
    # every lane position is uniform (a lane that never drops would show here)
    lane_means = m.float().mean(dim=(0, 1))
    assert lane_means.min() > 0.88 and lane_means.max() < 0.92
    d = Dropout(0.25).train()
    x = torch.ones(200, 64)
    assert abs(d(x).mean().item() - 1.0) < 0.02
    assert torch.equal(d.eval()(x), x)
    v = vmap(Dropout(0.5).train(), randomness="different")(torch.ones(3, 100, 16))
    assert not torch.equal(v[0], v[1])


@pytest.mark.parametrize("device", accelerators())
def test_cv_learns_on_the_gpu_with_autocast(device):
    """The CUDA path end to end: stacked folds, bf16/fp16 autocast, predictions back on the CPU."""
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.splits import task_splits
    from hilbert_cli.training.synthetic import make_synthetic

    ds = make_synthetic(240, tasks={"audio": "audio"}, n_classes={"audio": 3}, d_audio=8, d_text=8, min_segments=4,
                        max_segments=8, n_groups=80, strength=2.0, seed=3)
    splits = task_splits(ds, "audio", n_folds=3, seed=0)
    r = run_cv(ds, "audio", tiny_model("hilbert"), tiny_train(device=device, amp=True), splits)
    assert r.auc > 0.75, r.fold_aucs
    assert np.allclose(r.oof_probs.sum(1), 1.0, atol=1e-4)


def test_run_cv_reports_every_epoch_of_every_fold(data):
    """Folds of a stack finish together at the end: progress comes per epoch, in order per fold."""
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.splits import task_splits

    seen: dict[int, list[int]] = {}
    splits = task_splits(data, "y", n_folds=3, seed=0)
    with torch_threads(1):
        r = run_cv(data, "y", tiny_model("hilbert"), tiny_train(max_epochs=6, min_epochs=2, patience=2), splits,
                   epoch_callback=lambda k, rec: seen.setdefault(k, []).append(rec["epoch"]))
    assert sorted(seen) == [0, 1, 2]
    for k, d in enumerate(r.diagnostics):
        assert seen[k] == list(range(1, d["epochs_run"] + 1))
