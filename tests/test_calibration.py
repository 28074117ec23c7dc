"""Calibration maps on data with known probabilities: the map recovers the distortion and lowers
the expected calibration error on held-out predictions; stored maps are checked as untrusted JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hilbert_cli

from hilbert_cli.training.calibration import (
    apply_calibration,
    brier_score,
    cross_fitted_errors,
    expected_calibration_error,
    fit_calibration,
    from_json,
    reliability_bins,
)
from tests.fixtures_score import score_setup  # noqa: F401


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


def test_cross_fitted_ece_is_the_honest_figure():
    """A map fitted on few predictions flatters itself in-sample; each fold calibrated by the
    other folds' map gives the figure a user will see on new recordings."""
    logits, _, y = _known(120, 3, seed=3)
    raw = _softmax(4.0 * logits)
    folds = np.arange(120) % 6
    cal = fit_calibration(raw, y)
    cross = cross_fitted_errors(raw, y, folds)
    assert cross["ece_cross_fitted"] < cal["ece_raw"]  # calibration still helps out of sample
    assert 0 <= cross["brier_cross_fitted"] < cal["brier_raw"]
    # each fold's probabilities come from a map that never saw that fold
    by_hand = np.zeros_like(raw)
    for k in range(6):
        rest = folds != k
        by_hand[~rest] = apply_calibration(raw[~rest], fit_calibration(raw[rest], y[rest]))
    assert cross["ece_cross_fitted"] == pytest.approx(expected_calibration_error(by_hand, y))
    assert cross["ece_cross_fitted"] != pytest.approx(cal["ece_calibrated"])


def test_auto_applies_a_map_only_where_it_helps_recordings_it_never_saw():
    """A temperature fitted on 30 well-calibrated predictions overfits them: auto leaves them raw;
    a 4x overconfident model's map helps out of sample, and auto applies it."""
    from hilbert_cli.training.calibration import cross_fitted_errors
    from hilbert_cli.evaluation.train import _use_calibration

    def cal_of(scale, n, seed):
        logits, _, y = _known(n, 3, seed=seed)
        raw = _softmax(scale * logits)
        return {**fit_calibration(raw, y), **cross_fitted_errors(raw, y, np.arange(n) % 5)}

    over = cal_of(4.0, 600, 5)
    assert _use_calibration(over, "auto") and _use_calibration(over, "always")
    assert not _use_calibration(over, "off") and not _use_calibration(None, "always")
    fine = [cal_of(1.0, 30, s) for s in range(6)]
    assert not all(_use_calibration(c, "auto") for c in fine)  # on small, calibrated data it is often left off
    assert all(_use_calibration(c, "always") for c in fine)
    for c in fine:
        helps = c["ece_cross_fitted"] < c["ece_raw"] and c["brier_cross_fitted"] <= c["brier_raw"]
        assert _use_calibration(c, "auto") == helps


def test_reliability_bins_are_the_ece_bins():
    logits, _, y = _known(2000, 3, seed=4)
    raw = _softmax(4.0 * logits)
    conf, acc, n = reliability_bins(raw, y)
    assert n.sum() == 2000 and (np.diff(conf) > 0).all()
    assert np.sum(n * np.abs(acc - conf)) / 2000 == pytest.approx(expected_calibration_error(raw, y))
    assert (acc < conf).mean() > 0.8  # an overconfident model sits under the diagonal


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


# --- wired into train, the saved model and score ------------------------------------------------

REPO = Path(hilbert_cli.__file__).resolve().parents[1]
QUICK = ["--set", "data.synthetic.n_recordings=40", "--set", "train.max_epochs=2", "--set", "train.min_epochs=1",
         "--set", "train.n_folds=3", "--set", "train.threads=1", "--tasks", "audio_affect"]


def test_train_fits_the_map_on_the_out_of_fold_predictions_and_predict_applies_it(tmp_path):
    import pyarrow.parquet as pq

    from hilbert_cli.errors import ConfigError
    from hilbert_cli.training import load_model_dir

    run = tmp_path / "synthetic"
    r = subprocess.run([sys.executable, "-m", "hilbert_cli.cli", "train", "recipes/synthetic.toml", "--out", str(run),
                        *QUICK, "--set", 'train.calibration="always"'], capture_output=True, text=True, cwd=REPO,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    cfg_path = run / "models" / "audio_affect" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cal = cfg["calibration"]
    assert cal["method"] == "temperature" and cal["n"] == 40 and cal["n_classes"] == 3
    oof = [p for p in pq.read_table(run / "predictions.parquet").to_pylist() if p["variant"] == cfg["variant"]]
    refit = fit_calibration(np.array([p["probs"] for p in oof]), np.array([p["true_index"] for p in oof]))
    assert refit["temperature"] == pytest.approx(cal["temperature"], rel=1e-3)  # the OOF predictions, not the fit
    final = json.loads((run / "summary.json").read_text())["final_models"]["audio_affect"]
    assert final["calibration"] == cal and final["calibration_applied"] is True
    assert 0 <= cal["ece_cross_fitted"] <= 1
    report = (run / "report.md").read_text()
    assert "## Calibration of the scores" in report and "| audio_affect | temperature |" in report
    assert (run / "reliability_audio_affect.png").stat().st_size > 1000 and "reliability_audio_affect.png" in report

    x = np.random.default_rng(0).standard_normal((9, 32)), np.random.default_rng(1).standard_normal((9, 24))
    p = load_model_dir(run).predict(*x)[0]
    assert p.raw_probs is not None and p.probs == pytest.approx(apply_calibration(p.raw_probs, cal)[0], abs=1e-6)
    assert p.label == p.class_names[int(np.argmax(p.probs))]
    cfg["calibration"]["temperature"] = "hot"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="config.json: calibration: 'temperature' must be a finite number"):
        load_model_dir(run)
    cfg["calibration"] = None  # a model saved before calibration: raw probabilities, no raw_probs
    cfg_path.write_text(json.dumps(cfg))
    q = load_model_dir(run).predict(*x)[0]
    assert q.raw_probs is None and q.probs == pytest.approx(p.raw_probs, abs=1e-6)


def test_score_writes_calibrated_probabilities_and_keeps_the_raw_ones(score_setup, tmp_path):
    import pyarrow.parquet as pq

    from hilbert_cli.scoring.pipeline import ScoreOptions, score_recordings

    calibrated = tmp_path / "calibrated"
    shutil.copytree(score_setup.model_dir, calibrated)
    cfg_path = calibrated / "models" / "affect" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["calibration"] = {"method": "temperature", "temperature": 3.0, "n_classes": 3}
    cfg_path.write_text(json.dumps(cfg))
    one = next(p for p in sorted(score_setup.inputs.rglob("*.wav")) if p.name not in score_setup.bad)
    tables = {}
    for name, model in (("raw", score_setup.model_dir), ("cal", calibrated)):
        opts = ScoreOptions(model_dir=model, work_dir=tmp_path / "work", transcripts=score_setup.transcripts,
                            device="cpu")
        run = score_recordings(one, opts, tmp_path / f"{name}.parquet", show_progress=False)
        assert run.exit_code == 0
        tables[name] = pq.read_table(run.out_path).to_pylist()
    raw, cal = tables["raw"][0], tables["cal"][0]
    assert raw["raw_probabilities"] is None and cal["raw_probabilities"] == pytest.approx(raw["probabilities"], abs=1e-6)
    want = apply_calibration(np.array(raw["probabilities"]), cfg["calibration"])[0]
    assert cal["probabilities"] == pytest.approx(want, abs=1e-6) and cal["model_id"] != raw["model_id"]
    assert [cal[f"prob_{c}"] for c in cal["class_names"]] == pytest.approx(want, abs=1e-6)
    assert max(want) < max(raw["probabilities"])  # T = 3 softens
