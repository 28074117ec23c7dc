"""The segment vote of HILBERT (nn/vote.py, ModelConfig.segment_vote, LossConfig.segment_vote)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fixtures_train import assert_saved_model_scores_as_trained, tiny_model, tiny_train, torch_threads
from hilbert_cli.nn import create_model
from hilbert_cli.nn.vote import vote_logits
from hilbert_cli.training.objective import segment_ce

VARIANTS = ["transfer", "transfer_moe", "contrastive_moe", "hilbert"]


def test_vote_is_the_log_mean_of_the_valid_segments_probabilities():
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    got = vote_logits(seg, mask)
    for b in range(3):
        expected = torch.softmax(seg[b, mask[b]], -1).mean(0).log()
        torch.testing.assert_close(got[b], expected)
    assert torch.allclose(got.exp().sum(-1), torch.ones(3))  # probabilities already


def test_segment_loss_is_each_recordings_mean_then_the_class_weighted_mean():
    g = torch.Generator().manual_seed(1)
    seg = torch.randn(3, 4, 3, generator=g)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    y = torch.tensor([2, 0, 0])
    w = torch.tensor([1.0, 0.5, 3.0])
    per_rec = torch.stack([F.cross_entropy(seg[b, mask[b]], y[b].repeat(int(mask[b].sum()))) for b in range(3)])
    torch.testing.assert_close(segment_ce(seg, mask, y, w), (w[y] * per_rec).sum() / w[y].sum())
    torch.testing.assert_close(segment_ce(seg, mask, y), per_rec.mean())
    # a recording counts once, however many segments it has
    long = torch.cat([seg[1:2]] * 5, dim=1)
    torch.testing.assert_close(segment_ce(long, torch.ones(1, 20, dtype=torch.bool), y[1:2]), per_rec[1])


def test_segment_loss_smooths_labels_as_the_recording_loss_does():
    """LossConfig.label_smoothing reaches the segment loss too (torch's own smoothing is the
    reference), with and without class weights."""
    g = torch.Generator().manual_seed(2)
    seg = torch.randn(3, 4, 3, generator=g)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    y = torch.tensor([2, 0, 1])
    w = torch.tensor([1.0, 0.5, 3.0])
    per_rec = torch.stack([F.cross_entropy(seg[b, mask[b]], y[b].repeat(int(mask[b].sum())), label_smoothing=0.2)
                           for b in range(3)])
    torch.testing.assert_close(segment_ce(seg, mask, y, label_smoothing=0.2), per_rec.mean())
    torch.testing.assert_close(segment_ce(seg, mask, y, w, 0.2), (w[y] * per_rec).sum() / w[y].sum())
    assert not torch.allclose(segment_ce(seg, mask, y, label_smoothing=0.2), segment_ce(seg, mask, y))
    # and the training objective passes the configured smoothing on
    from hilbert_cli.training.config import LossConfig
    from hilbert_cli.training.objective import compute_loss

    out = {"logits": torch.randn(3, 3, generator=g), "seg_logits": seg, "seg_mask": mask}
    _, parts = compute_loss(out, y, variant="transfer", loss_config=LossConfig(segment_vote=1.0, label_smoothing=0.2))
    torch.testing.assert_close(parts["segment_vote"], segment_ce(seg, mask, y, label_smoothing=0.2))


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_never_changes_the_vote(variant):
    torch.manual_seed(0)
    m = create_model(tiny_model(variant, segment_vote=True), 8, 6, 3).eval()
    g = torch.Generator().manual_seed(1)
    lengths = [3, 7, 1]
    a = [torch.randn(n, 8, generator=g) for n in lengths]
    t = [torch.randn(n, 6, generator=g) for n in lengths]

    def batch(L, fill):
        A, T = torch.full((3, L, 8), fill), torch.full((3, L, 6), fill)
        M = torch.zeros(3, L, dtype=torch.bool)
        for i, n in enumerate(lengths):
            A[i, :n], T[i, :n], M[i, :n] = a[i], t[i], True
        return A, T, M

    with torch.no_grad():
        ref, padded = m(*batch(7, 0.0)), m(*batch(11, 50.0))
        plain = create_model(tiny_model(variant), 8, 6, 3).eval()
    assert torch.allclose(ref["logits"], padded["logits"], atol=1e-5)
    per_segment = 1 if variant.startswith("transfer") else 2  # the joint sequence: two positions a segment
    assert ref["seg_logits"].shape[-1] == 3 and int(ref["seg_mask"].sum()) == per_segment * sum(lengths)
    assert "seg_logits" not in plain(*batch(7, 0.0))  # off: no such path


@pytest.mark.parametrize("variant", ["transfer", "hilbert"])
def test_the_vote_is_added_to_the_logits(variant):
    torch.manual_seed(0)
    m = create_model(tiny_model(variant, segment_vote=True), 8, 6, 3).eval()
    last = m.classifier.net[-1] if variant == "transfer" else m.classifier.head[-1]
    with torch.no_grad():  # the classifier's output zeroed: the logits are the vote alone
        last.weight.zero_()
        last.bias.zero_()
        a, t = torch.randn(2, 5, 8), torch.randn(2, 5, 6)
        mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
        out = m(a, t, mask)
    torch.testing.assert_close(out["logits"], vote_logits(out["seg_logits"], out["seg_mask"]))


def _votes(n=60, seed=0):
    """Label = whether most segments are of the positive kind (a cue in audio dim 0); the recording
    means blur it: counts 3 of 5 and 2 of 5 differ by little in the mean."""
    from hilbert_cli.training.data import FeatureDataset

    rng = np.random.default_rng(seed)
    audio, labels = [], []
    for _ in range(n):
        k = int(rng.integers(5, 12))
        pos = rng.random(k) < rng.uniform(0.2, 0.8)
        x = rng.normal(size=(k, 6)).astype(np.float32)
        x[:, 0] += np.where(pos, 2.0, -2.0)
        audio.append(x)
        labels.append(int(pos.mean() > 0.5))
    text = [rng.normal(size=(len(x), 4)).astype(np.float32) for x in audio]
    return FeatureDataset.from_arrays([f"r{i}" for i in range(n)], audio, text, {"y": labels},
                                      groups=[f"g{i // 3}" for i in range(n)], class_names={"y": ["0", "1"]})


def test_training_uses_the_segment_loss_and_a_saved_model_scores_as_trained(tmp_path):
    from hilbert_cli.training.config import LossConfig
    from hilbert_cli.training.trainer import fit_model

    data = _votes()
    with torch_threads(1):
        f = fit_model(data, "y", np.arange(data.n), tiny_model("hilbert", segment_vote=True),
                      tiny_train(val_fraction=0.0), LossConfig(segment_vote=1.0), n_epochs=4, seed=0)
        off = fit_model(data, "y", np.arange(data.n), tiny_model("hilbert", segment_vote=True),
                        tiny_train(val_fraction=0.0), LossConfig(segment_vote=0.0), n_epochs=4, seed=0)
    assert f.history[-1]["train_segment_vote"] > 0 and "train_segment_vote" not in off.history[-1]
    assert_saved_model_scores_as_trained(f, data, 5, tmp_path, "vote")
