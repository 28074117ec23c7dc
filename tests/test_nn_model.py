"""The HILBERT network: output contract, padding invariance, modality masking, gating."""

import pytest
import torch

from hilbert_cli.nn import create_model as build_model
from tests.fixtures_train import one_thread, tiny_model  # noqa: F401  (one_thread: fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

VARIANTS = ["transfer", "transfer_moe", "contrastive_moe", "hilbert"]
KEYS = ("logits", "z_a", "z_t", "z_j", "h_a", "h_t", "h_j", "gate", "aux_loss")


def _model(variant, **kw):
    torch.manual_seed(0)
    return build_model(tiny_model(variant, **kw), 8, 6, 3).eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_contract(variant):
    m = _model(variant)
    a, t = torch.randn(5, 7, 8), torch.randn(5, 7, 6)
    mask = torch.ones(5, 7, dtype=torch.bool)
    out = m(a, t, mask)
    assert set(KEYS) <= set(out)
    assert out["logits"].shape == (5, 3)
    for k in ("z_a", "z_t", "z_j"):
        assert out[k].shape == (5, 64)
    for k in ("h_a", "h_t", "h_j"):
        assert out[k].shape == (5, 16)
    assert torch.allclose(out["gate"].sum(-1), torch.ones(5))


@pytest.mark.parametrize("variant", VARIANTS)
def test_padded_segments_do_not_change_any_output(variant):
    m = _model(variant)
    g = torch.Generator().manual_seed(1)
    lengths = [3, 7, 1, 5]
    a = [torch.randn(n, 8, generator=g) for n in lengths]
    t = [torch.randn(n, 6, generator=g) for n in lengths]

    def batch(L, fill):
        A = torch.full((len(lengths), L, 8), fill)
        T = torch.full((len(lengths), L, 6), fill)
        M = torch.zeros(len(lengths), L, dtype=torch.bool)
        for i, n in enumerate(lengths):
            A[i, :n], T[i, :n], M[i, :n] = a[i], t[i], True
        return A, T, M

    with torch.no_grad():
        ref = m(*batch(7, 0.0))
        padded = m(*batch(12, 123.0))  # more padding, filled with garbage
        alone = [m(a[i][None], t[i][None], torch.ones(1, n, dtype=torch.bool)) for i, n in enumerate(lengths)]
    for k in ("logits", "z_a", "z_t", "z_j", "h_a", "h_t", "h_j", "gate"):
        assert torch.allclose(ref[k], padded[k], atol=1e-5), k
        solo = torch.cat([o[k] for o in alone])
        assert torch.allclose(ref[k], solo, atol=1e-5), k


def test_empty_recording_gives_finite_outputs():
    m = _model("hilbert")
    out = m(torch.randn(2, 4, 8), torch.randn(2, 4, 6), torch.tensor([[True] * 4, [False] * 4]))
    assert torch.isfinite(out["logits"]).all()


@pytest.mark.parametrize("variant", ["transfer_moe", "hilbert"])
def test_drop_modality_removes_that_modality(variant):
    m = _model(variant)
    a, t = torch.randn(3, 5, 8), torch.randn(3, 5, 6)
    mask = torch.ones(3, 5, dtype=torch.bool)
    with torch.no_grad():
        full = m(a, t, mask)["logits"]
        no_audio = m(a, t, mask, drop_modality="audio")["logits"]
        no_audio_other = m(torch.randn(3, 5, 8), t, mask, drop_modality="audio")["logits"]
        no_text = m(a, t, mask, drop_modality="text")["logits"]
    assert not torch.allclose(full, no_audio)
    assert not torch.allclose(full, no_text)
    assert torch.allclose(no_audio, no_audio_other)  # audio no longer matters
    with pytest.raises(ValueError):
        m(a, t, mask, drop_modality="video")


def test_top_k_gate_is_sparse_with_load_balancing_term():
    m = _model("hilbert", top_k=2).train()
    out = m(torch.randn(6, 4, 8), torch.randn(6, 4, 6), torch.ones(6, 4, dtype=torch.bool))
    assert ((out["gate"] > 0).sum(-1) == 2).all()
    assert torch.allclose(out["gate"].sum(-1), torch.ones(6))
    assert out["aux_loss"].requires_grad and float(out["aux_loss"].detach()) > 0


def test_model_config_validation():
    from hilbert_cli.nn.config import ModelConfig

    with pytest.raises(ValueError):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError):
        ModelConfig(latent_dim=100)
    with pytest.raises(ValueError):
        ModelConfig(top_k=9, n_experts=8)
    for d in (64, 128, 256):
        assert ModelConfig(latent_dim=d).latent_dim == d


@pytest.mark.parametrize("variant,expect", [
    ("transfer", {"ce"}),
    ("transfer_moe", {"ce"}),
    ("contrastive_moe", {"ce", "contrastive"}),
    ("hilbert", {"ce", "contrastive", "cka", "mi"}),
])
def test_loss_terms_per_variant_and_zero_weight_ablates(variant, expect):
    from hilbert_cli.training.config import LossConfig
    from hilbert_cli.training.objective import compute_loss

    m = _model(variant).train()
    out = m(torch.randn(6, 4, 8), torch.randn(6, 4, 6), torch.ones(6, 4, dtype=torch.bool))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    total, parts = compute_loss(out, y, variant=variant, loss_config=LossConfig())
    assert set(parts) - {"total"} == expect
    total.backward()
    _, ablated = compute_loss(m(torch.randn(6, 4, 8), torch.randn(6, 4, 6), torch.ones(6, 4, dtype=torch.bool)), y,
                              variant=variant, loss_config=LossConfig(contrastive=0, cka=0, mi=0))
    assert set(ablated) - {"total"} == {"ce"}
    assert ablated["total"] == pytest.approx(ablated["ce"])
