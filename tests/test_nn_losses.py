"""HILBERT losses on synthetic tensors: each test could fail if the loss were wrong."""

import math

import numpy as np
import pytest
import torch

from tests.fixtures_train import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

from hilbert_cli.nn import losses as L


def _rand(b=32, k=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64)


def _numpy_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Direct computation in the Gram (HSIC) form: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def test_cka_of_x_with_itself_is_one():
    x = _rand()
    assert float(L.linear_cka(x, x)) == pytest.approx(1.0, abs=1e-9)


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling():
    x, y = _rand(seed=1), _rand(seed=2)
    y = y + 0.5 * x  # some shared structure so CKA is not ~0
    q, _ = torch.linalg.qr(_rand(16, 16, seed=3))
    ref = float(L.linear_cka(x, y))
    assert float(L.linear_cka(x @ q, y)) == pytest.approx(ref, abs=1e-9)
    assert float(L.linear_cka(x, y @ q)) == pytest.approx(ref, abs=1e-9)
    assert float(L.linear_cka(3.7 * x, 0.01 * y)) == pytest.approx(ref, abs=1e-9)
    # but not invariant to an anisotropic scaling
    s = torch.ones(16, dtype=torch.float64)
    s[:4] = 10.0
    assert abs(float(L.linear_cka(x * s, y)) - ref) > 1e-3


def test_cka_matches_numpy_gram_form():
    x, y = _rand(24, 10, seed=4), _rand(24, 7, seed=5)
    y[:, :3] += x[:, :3]
    assert float(L.linear_cka(x, y)) == pytest.approx(_numpy_cka(x.numpy(), y.numpy()), abs=1e-9)


def test_cka_loss_zero_when_all_views_equal_and_positive_otherwise():
    x = _rand()
    assert float(L.cka_loss(x, x, x)) == pytest.approx(0.0, abs=1e-9)
    assert float(L.cka_loss(_rand(seed=7), _rand(seed=8), x)) > 0.5


def test_contrastive_lower_for_aligned_than_shuffled_pairs():
    z_j = _rand(seed=10)
    z_a = z_j + 0.1 * _rand(seed=11)
    z_t = z_j + 0.1 * _rand(seed=12)
    perm = torch.randperm(32, generator=torch.Generator().manual_seed(0))
    aligned = float(L.dual_contrastive(z_a, z_t, z_j))
    shuffled = float(L.dual_contrastive(z_a[perm], z_t[perm], z_j))
    assert aligned < shuffled
    assert float(L.audio_text_contrastive(z_a, z_t)) < float(L.audio_text_contrastive(z_a, z_t[perm]))


def test_dual_contrastive_has_no_audio_text_term():
    """Only (j, a) and (j, t) pairings matter: the loss equals the mean of the two InfoNCE terms."""
    z_a, z_t, z_j = _rand(seed=1), _rand(seed=2), _rand(seed=3)
    expect = 0.5 * (float(L.info_nce(z_j, z_a)) + float(L.info_nce(z_j, z_t)))
    assert float(L.dual_contrastive(z_a, z_t, z_j)) == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize("b", [2, 8, 64])
@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
def test_infonce_estimate_never_exceeds_log_batch(b, temperature):
    x = _rand(b, 8, seed=b)
    for y in (x, x + 0.01 * _rand(b, 8, seed=1), _rand(b, 8, seed=2)):
        est = float(L.infonce_mi(x, y, temperature))
        assert est <= math.log(b) + 1e-9
    # nearly perfect alignment at a low temperature approaches the bound
    if temperature == 0.01:
        assert float(L.infonce_mi(x, x, temperature)) > math.log(b) - 0.05


def test_mi_balance_zero_for_equal_views_and_penalises_imbalance():
    z_j = _rand(seed=1)
    z_close = z_j + 0.05 * _rand(seed=2)
    z_far = _rand(seed=3)
    assert float(L.mi_balance(z_close, z_close, z_j)) == pytest.approx(0.0, abs=1e-12)
    assert float(L.mi_balance(z_close, z_far, z_j)) > 0.5


def test_load_balance_is_one_when_balanced():
    probs = torch.full((8, 4), 0.25)
    assign = torch.zeros(8, 4)
    assign[torch.arange(8), torch.arange(8) % 4] = 1
    assert float(L.load_balance_loss(probs, assign)) == pytest.approx(1.0)
    skew = torch.zeros(8, 4)
    skew[:, 0] = 1
    p_skew = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(8, 1)
    assert float(L.load_balance_loss(p_skew, skew)) > 1.5


def test_losses_have_finite_gradients():
    z = [_rand(seed=s).float().requires_grad_() for s in range(3)]
    total = L.dual_contrastive(*z) + L.cka_loss(*z) + L.mi_balance(*z)
    total.backward()
    for t in z:
        assert torch.isfinite(t.grad).all()
