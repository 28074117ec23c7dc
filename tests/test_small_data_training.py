"""Small-data training options: bag crops (training/augment.py), the wide path of a wide-and-deep
model (nn/wide.py, ModelConfig.wide, LossConfig.wide_c) and weight averaging (TrainConfig.swa_epochs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures_train import assert_saved_model_scores_as_trained, tiny_model, tiny_train, torch_threads


@pytest.fixture(scope="module")
def data():
    from hilbert_cli.training.synthetic import make_synthetic

    return make_synthetic(48, tasks=[("y", "audio", 2)], d_audio=6, d_text=5, min_segments=2, max_segments=9,
                          n_groups=12, strength=2.0, seed=3)


@pytest.mark.parametrize("mode", ["contiguous", "subset"])
def test_crops_stay_inside_their_recording_and_keep_the_drawn_share(mode):
    from hilbert_cli.training.augment import crop_mask

    lengths = [1, 2, 5, 9, 12, 0]
    mask = torch.zeros(len(lengths), 12, dtype=torch.bool)
    for r, n in enumerate(lengths):
        mask[r, :n] = True
    rng = np.random.default_rng(0)
    sizes = {r: set() for r in range(len(lengths))}
    non_contiguous = 0
    for _ in range(200):
        c = crop_mask(mask, rng, 0.5, mode)
        assert c.shape == mask.shape and c.dtype == torch.bool
        assert not (c & ~mask).any()  # never a padded position, never another recording's row
        for r, n in enumerate(lengths):
            kept = torch.nonzero(c[r]).flatten().numpy()
            if n == 0:
                assert len(kept) == 0
                continue
            assert int(np.ceil(0.5 * n)) <= len(kept) <= n
            sizes[r].add(len(kept))
            gaps = np.diff(kept)
            if mode == "contiguous":
                assert (gaps == 1).all()
            else:
                non_contiguous += int((gaps > 1).any())
    assert sizes[4] == set(range(7, 13))  # every ceil(f * 12), f in (0.5, 1], is drawn
    assert mode == "contiguous" or non_contiguous > 0
    assert torch.equal(crop_mask(mask, rng, 1.0, mode), mask)  # 1.0: no augmentation


def test_crops_are_reproducible_and_rejects_an_unknown_mode():
    from hilbert_cli.training.augment import crop_mask

    mask = torch.ones(3, 10, dtype=torch.bool)
    a = crop_mask(mask, np.random.default_rng(7), 0.3)
    assert torch.equal(a, crop_mask(mask, np.random.default_rng(7), 0.3))
    with pytest.raises(ValueError, match="crop mode"):
        crop_mask(mask, np.random.default_rng(7), 0.3, "random")


def _inputs(b=4, length=7, d_a=6, d_t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    audio, text = torch.randn(b, length, d_a, generator=g), torch.randn(b, length, d_t, generator=g)
    mask = torch.zeros(b, length, dtype=torch.bool)
    for r, n in enumerate([7, 3, 1, 5][:b]):
        mask[r, :n] = True
    return audio, text, mask


@pytest.mark.parametrize("variant", ["hilbert", "transfer"])
def test_wide_path_is_the_output_when_the_deep_path_is_zero(variant):
    from hilbert_cli.nn.model import create_model

    audio, text, mask = _inputs()
    torch.manual_seed(0)
    model = create_model(tiny_model(variant, wide=True), 6, 5, 3).eval()
    stats = []
    for r in range(4):  # mean and std of each recording's valid segments, by hand
        a, t = audio[r, mask[r]].double(), text[r, mask[r]].double()
        stats.append(torch.cat([a.mean(0), a.std(0, unbiased=False), t.mean(0), t.std(0, unbiased=False)]))
    stats = torch.stack(stats)
    model.wide.set_scaler(stats.float())
    with torch.no_grad():
        model.wide.linear.weight.normal_()
        model.wide.linear.bias.normal_()
    x = (stats - stats.mean(0)) / stats.std(0, unbiased=False).clamp_min(1e-6)
    expected = x @ model.wide.linear.weight.double().T + model.wide.linear.bias.double()
    with torch.no_grad():
        out = model(audio, text, mask)
    assert out["logits"].shape == (4, 3)
    # the deep path's output layer starts at zero: the model is the linear model of the statistics
    torch.testing.assert_close(out["logits"].double(), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["wide_penalty"], 0.5 * model.wide.linear.weight.pow(2).sum())
    # padding (features beyond the mask) changes nothing
    noisy = audio.clone()
    noisy[~mask] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(model(noisy, text, mask)["logits"], out["logits"])
    # without `wide` the model has no such path and no penalty
    plain = create_model(tiny_model(variant), 6, 5, 3)
    assert plain.wide is None and "wide_penalty" not in plain(audio, text, mask)


def _fit(data, mc, tc, lc=None, n_epochs=None, seed=0):
    from hilbert_cli.training.trainer import fit_model

    idx = np.arange(data.n)
    with torch_threads(1):
        return fit_model(data, "y", idx, mc, tc, lc, n_epochs=n_epochs, seed=seed)


def test_wide_scaler_is_fitted_on_the_training_recordings_and_c_sets_the_l2(data):
    from hilbert_cli.nn.wide import pooled_stats
    from hilbert_cli.training.config import LossConfig

    tc = tiny_train(max_epochs=6, val_fraction=0.0)
    f = _fit(data, tiny_model("transfer", wide=True), tc, LossConfig(wide_c=100.0), n_epochs=6)
    a, t = f.prep.transform(data.audio, data.text, data.mask)
    stats = pooled_stats(a, t, data.mask, data.mask)
    torch.testing.assert_close(f.model.wide.mean, stats.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(f.model.wide.scale, 1 / stats.std(0, unbiased=False), atol=1e-3, rtol=1e-3)
    assert "train_wide_l2" in f.history[-1]
    strong = _fit(data, tiny_model("transfer", wide=True), tc, LossConfig(wide_c=1e-3), n_epochs=6)
    norm = float(f.model.wide.linear.weight.detach().norm())
    assert norm > 0 and float(strong.model.wide.linear.weight.detach().norm()) < 0.5 * norm  # a smaller C shrinks the path


def test_swa_is_the_mean_of_the_last_epochs_weights(data):
    mc = tiny_model("transfer", dropout=0.0)
    tc = tiny_train(val_fraction=0.0)
    w3 = _fit(data, mc, tc, n_epochs=3).model.state_dict()
    w4 = _fit(data, mc, tc, n_epochs=4).model.state_dict()
    swa = _fit(data, mc, tiny_train(val_fraction=0.0, swa_epochs=2), n_epochs=4).model.state_dict()
    one = _fit(data, mc, tiny_train(val_fraction=0.0, swa_epochs=1), n_epochs=4).model.state_dict()
    assert any(not torch.equal(w3[k], w4[k]) for k in w4)
    for k in w4:
        torch.testing.assert_close(swa[k], (w3[k] + w4[k]) / 2, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(one[k], w4[k])


def test_crops_change_training_and_cv_runs_with_every_option(data):
    from hilbert_cli.training.cv import run_cv
    from hilbert_cli.training.splits import task_splits

    mc = tiny_model("hilbert", dropout=0.0)
    base = _fit(data, mc, tiny_train(val_fraction=0.0), n_epochs=2).model.state_dict()
    crop = _fit(data, mc, tiny_train(val_fraction=0.0, crop_min=0.5), n_epochs=2).model.state_dict()
    assert any(not torch.equal(base[k], crop[k]) for k in base)
    splits = task_splits(data, "y", n_folds=3, seed=0)
    tc = tiny_train(max_epochs=4, val_fraction=0.0, crop_min=0.6, crop_mode="subset", swa_epochs=2)
    with torch_threads(1):
        r = run_cv(data, "y", tiny_model("hilbert", wide=True), tc, splits)
    assert np.isfinite(r.oof_probs).all() and len(r.fold_aucs) == 3
    assert np.allclose(r.oof_probs.sum(1), 1.0, atol=1e-5)


def test_a_saved_wide_model_scores_as_it_was_trained(data, tmp_path):
    """The wide path's standardisation is part of the weights: a loaded model predicts the same."""
    f = _fit(data, tiny_model("hilbert", wide=True), tiny_train(val_fraction=0.0), n_epochs=3)
    assert_saved_model_scores_as_trained(f, data, 6, tmp_path, "wide")


def test_inner_ensemble_predicts_with_the_mean_of_the_inner_models(data):
    """epoch_choice inner_ensemble: each test fold gets the mean probabilities of the inner models
    of its training fold (each early-stopped on its own inner validation part), nothing else."""
    from hilbert_cli.training.cv import _inner_jobs, run_cv
    from hilbert_cli.training.splits import task_splits
    from hilbert_cli.training.trainer import fit_models

    mc = tiny_model("transfer", dropout=0.0)
    tc = tiny_train(max_epochs=6, min_epochs=2, patience=2, epoch_choice="inner_ensemble", inner_folds=2)
    splits = task_splits(data, "y", n_folds=3, seed=0)
    with torch_threads(1):
        r = run_cv(data, "y", mc, tc, splits)
        jobs = [_inner_jobs(tr, data.labels["y"], data.groups, tc, tc.seed + 104729 * (k + 1))
                for k, (tr, _) in enumerate(splits)]
        fits = fit_models(data, "y", [j for js in jobs for j in js], mc, tc)  # trained together, as run_cv does
    for k, (tr, te) in enumerate(splits):
        assert len(jobs[k]) == 2 and all(not set(j.train_idx) & set(te) for j in jobs[k])
        mine = fits[2 * k: 2 * k + 2]
        mean = np.mean([f.predict_proba(data, te) for f in mine], axis=0)
        np.testing.assert_allclose(r.oof_probs[np.searchsorted(r.indices, te)], mean, atol=1e-5)
        assert r.diagnostics[k]["inner_best_epochs"] == [f.best_epoch for f in mine]
        single = mine[0].predict_proba(data, te)
        assert not np.allclose(single, mean, atol=1e-3)  # the mean is not one of its members
