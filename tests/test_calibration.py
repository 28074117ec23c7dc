"""Calibration maps on data with known probabilities: the map recovers the distortion and lowers
the expected calibration error on held-out predictions; stored maps are checked as untrusted JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hilbert_cli.training.calibration import (
    apply_calibration,
    brier_score,
    expected_calibration_error,
    fit_calibration,
    from_json,
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _known(n: int, n_classes: int, seed: int):
    """True class probabilities, labels drawn from them, and the logits behind them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, (n, n_classes))
    p_true = _softmax(logits)
    y = np.array([rng.choice(n_classes, p=p) for p in p_true])
    return logits, p_true, y


def test_temperature_scaling_recovers_an_overconfident_models_temperature_and_lowers_ece():
    logits, p_true, y = _known(4000, 3, seed=0)
    raw = _softmax(4.0 * logits)  # a model 4x too sure of itself
    fit, test = slice(0, 2000), slice(2000, None)
    cal = fit_calibration(raw[fit], y[fit])
    assert cal["method"] == "temperature" and cal["temperature"] == pytest.approx(4.0, rel=0.15)
    after = apply_calibration(raw[test], cal)
    ece_raw, ece_cal = expected_calibration_error(raw[test], y[test]), expected_calibration_error(after, y[test])
    assert ece_cal < 0.5 * ece_raw and ece_cal < 0.05
    assert brier_score(after, y[test]) < brier_score(raw[test], y[test])
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-9)
    assert (after.argmax(axis=1) == raw[test].argmax(axis=1)).all()  # the predicted class never moves
    np.testing.assert_allclose(after, p_true[test], atol=0.05)  # back to the true probabilities
    assert cal["ece_calibrated"] < cal["ece_raw"]


def test_platt_scaling_recovers_a_binary_distortion_and_lowers_ece():
    logits, p_true, y = _known(4000, 2, seed=1)
    z = logits[:, 1] - logits[:, 0]
    p1 = 1 / (1 + np.exp(-(3.0 * z + 1.0)))  # too steep and shifted
    raw = np.stack([1 - p1, p1], axis=1)
    cal = fit_calibration(raw[:2000], y[:2000])
    assert cal["method"] == "platt"
    assert cal["a"] == pytest.approx(1 / 3, rel=0.15) and cal["b"] == pytest.approx(-1 / 3, abs=0.12)
    after = apply_calibration(raw[2000:], cal)
    assert expected_calibration_error(after, y[2000:]) < 0.5 * expected_calibration_error(raw[2000:], y[2000:])
    np.testing.assert_allclose(after, p_true[2000:], atol=0.05)


def test_a_calibrated_model_is_left_about_as_it_is():
    logits, p_true, y = _known(3000, 4, seed=2)
    cal = fit_calibration(p_true, y)
    assert cal["temperature"] == pytest.approx(1.0, abs=0.1)


def test_stored_maps_are_checked_as_untrusted_json():
    _, p_true, y = _known(500, 3, seed=3)
    cal = fit_calibration(p_true, y)
    back = from_json(json.loads(json.dumps(cal)), "m/calibration.json", n_classes=3)
    np.testing.assert_allclose(apply_calibration(p_true, back), apply_calibration(p_true, cal))
    bad = [({"method": "exec", "temperature": 1.0}, "'method'"), ({"method": "temperature", "temperature": "2"}, "'temperature'"),
           ({"method": "temperature", "temperature": float("nan")}, "'temperature'"),
           ({"method": "temperature", "temperature": -1.0}, "> 0"), ({"method": "platt", "a": True, "b": 0.0}, "'a'"),
           ({"method": "platt", "a": 1.0, "b": 0.0}, "classes"), ([1, 2], "'method'")]
    for obj, needle in bad:
        with pytest.raises(ValueError, match=needle) as e:
            from_json(obj, "m/calibration.json", n_classes=3)
        assert str(e.value).startswith("m/calibration.json: ")
