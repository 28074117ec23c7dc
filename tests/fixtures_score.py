"""Shared pieces for the score tests: a tiny espeak-ng corpus, prepared with its true
transcripts, embedded with `spec` + a tiny random sentence encoder, and a tiny trained model.

Everything is real code on real (synthetic) speech; only the text encoder and the HILBERT model
are tiny, so the whole setup takes seconds, not minutes.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from hilbert_cli.demo.corpus import CorpusSpec, build_corpus

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

TINY_SPEC = CorpusSpec(n_participants=2, per_class=1, n_heldout_participants=2, heldout_per_class=1,
                       answers=(2, 2), sentences_per_answer=(1, 2), seed=3)


@dataclass
class ScoreSetup:
    corpus: object
    model_dir: Path
    work_train: Path
    inputs: Path  # held-out recordings + bad files: what the tests score
    transcripts: Path
    n_good: int
    bad: list[str]


def write_bad_recordings(root: Path) -> list[str]:
    """Recordings that must give error rows: a text file named .wav, an empty file, a truncated wav."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "not_audio.wav").write_text("this is not audio\n")
    (root / "empty.wav").write_bytes(b"")
    hdr = b"RIFF" + struct.pack("<I", 36 + 32000) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    (root / "truncated.wav").write_bytes(hdr + b"data" + struct.pack("<I", 32000) + b"\x00\x01" * 10)
    return ["empty.wav", "not_audio.wav", "truncated.wav"]


def train_tiny_model(features_dir: Path, labels: Path, run_dir: Path, *, seed: int = 0) -> Path:
    """A tiny hilbert-variant model on the features (no CV), saved as `hilbert train` saves it."""
    from hilbert_cli.nn import ModelConfig
    from hilbert_cli.training import FeatureDataset, TrainConfig, fit_model
    from hilbert_cli.training.checkpoint import save_task_model
    from hilbert_cli.training.data import load_features

    ds = FeatureDataset.from_parquet(features_dir, labels, tasks=["affect"], group_column="participant")
    *_, meta = load_features(features_dir)
    mc = ModelConfig(variant="hilbert", d_model=16, latent_dim=64, n_heads=2, n_experts=2, expert_hidden=8,
                     head_hidden=8)
    tc = TrainConfig(n_folds=0, max_epochs=2, batch_size=4, seed=seed, device="cpu", patience=0)
    fitted = fit_model(ds, "affect", np.arange(ds.n), mc, tc, n_epochs=2, device="cpu")
    fm = {k: meta.get(k) for k in ("audio_model", "text_model", "embed_options", "prepare")}
    save_task_model(fitted, run_dir / "models" / "affect", task="affect", run_name="tiny", d_audio=ds.d_audio,
                    d_text=ds.d_text, features_metadata=fm, train_config=tc)
    return run_dir


def build_score_setup(root: Path) -> ScoreSetup:
    from tests.fixtures_embed import build_tiny_sentence_model

    from hilbert_cli.batch import discover
    from hilbert_cli.embed import embed_work_dir
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import features_dir
    from hilbert_cli.prepare import PrepareOptions, prepare_recordings

    corpus = build_corpus(root / "corpus", TINY_SPEC, workers=2)
    # under the models dir: a model directory may name only registry models or local copies there
    text_model = build_tiny_sentence_model(root / "models" / "tiny_st")
    work = root / "work_train"
    popts = PrepareOptions(speaker="dominant", transcripts=str(corpus.transcripts / "train"), device="cpu")
    recs, _ = discover(corpus.train_dir)
    res = prepare_recordings(recs, popts, work, show_progress=False)
    assert not res.failed, res.failed
    eopts = EmbedOptions(audio="spec", text=str(text_model), device="cpu")
    res = embed_work_dir(work, eopts, show_progress=False)
    assert not res.failed, res.failed
    model_dir = train_tiny_model(features_dir(work, eopts), corpus.labels, root / "run")
    inputs = root / "inputs"
    shutil.copytree(corpus.heldout_dir, inputs)
    bad = write_bad_recordings(inputs)
    return ScoreSetup(corpus, model_dir, work, inputs, corpus.transcripts / "heldout", corpus.n_heldout, bad)


@pytest.fixture(scope="session")
def score_setup(tmp_path_factory) -> Iterator[ScoreSetup]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("score")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HILBERT_MODELS_DIR", str(root / "models"))  # where the tiny text encoder lives
        yield build_score_setup(root)
