"""Tiny local models and transcript tables for the embed / segment tests (plain functions + fixtures).

Every model here has random weights and real loading code: built from a tiny transformers
config, saved with save_pretrained, and loaded by path exactly as a hub model would be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

SR = 16_000


def build_tiny_audio_model(kind: str, out_dir: Path, *, seed: int = 0, **overrides) -> Path:
    """kind: hubert | wav2vec2 | wav2vec2-group | wav2vec2-conformer | whisper -> saved directory."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    out = Path(out_dir) / kind
    conv = dict(conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8), num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=2)
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, **conv)
    if kind == "hubert":
        cfg, cls = tf.HubertConfig(feat_extract_norm="layer", do_stable_layer_norm=True, **common), tf.HubertModel
    elif kind == "wav2vec2":
        cfg, cls = tf.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **common), tf.Wav2Vec2Model
    elif kind == "wav2vec2-group":
        cfg, cls = tf.Wav2Vec2Config(feat_extract_norm="group", **common), tf.Wav2Vec2Model
    elif kind == "wav2vec2-conformer":
        cfg = tf.Wav2Vec2ConformerConfig(feat_extract_norm="layer", position_embeddings_type="rotary",
                                         conv_depthwise_kernel_size=7, **common)
        cls = tf.Wav2Vec2ConformerModel
    elif kind == "whisper":
        cfg = tf.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=80,
                               max_source_positions=1500, max_target_positions=32, vocab_size=64,
                               pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
        cls = tf.WhisperModel
    else:
        raise ValueError(kind)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    model = cls(cfg).eval()
    model.save_pretrained(out)
    if kind == "whisper":
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    else:
        tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=cfg.feat_extract_norm == "layer").save_pretrained(out)
    return out


def build_tiny_sentence_model(out_dir: Path, *, seed: int = 0) -> Path:
    """A tiny random BERT + WordPiece vocab wrapped as a sentence-transformers model (mean pooling)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    out = Path(out_dir) / "tiny-st"
    raw = Path(out_dir) / "tiny-bert"
    raw.mkdir(parents=True, exist_ok=True)
    words = ("the a i my we you is was and but to of in it that so very love hate happy sad good bad day home "
             "family mother father child felt feel great terrible always never school work").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz.,!?'") + \
        ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + words
    (raw / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=True).save_pretrained(raw)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=31, max_position_embeddings=64)).save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=32)
    pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(out))
    return out


def words_table(sentences: list[str] | list[tuple[str, str]], *, recording_id: str = "rec", rate: float = 0.38,
                gap: float = 0.25, start: float = 0.3, target: str | None = None) -> pa.Table:
    """A prepare words table (docs/CONTRACTS.md, "Words table") from sentences, or (speaker, sentence) pairs.

    Words last 0.9 * rate seconds, one every `rate` seconds, `gap` s of silence after each
    sentence. `target` marks that speaker's words is_target (default: every word).
    """
    rows, t, i = [], start, 0
    for k, s in enumerate(sentences):
        spk, text = s if isinstance(s, tuple) else ("SPEAKER_00", s)
        for w in text.split():
            rows.append(dict(recording_id=recording_id, word_index=i, start_s=t, end_s=t + 0.9 * rate, word=w,
                             probability=None, speaker=spk, is_target=(target is None or spk == target),
                             asr_segment=k, avg_logprob=None, no_speech_prob=None, compression_ratio=None))
            i += 1
            t += rate
        t += gap
    schema = pa.schema([("recording_id", pa.string()), ("word_index", pa.int32()), ("start_s", pa.float64()),
                        ("end_s", pa.float64()), ("word", pa.string()), ("probability", pa.float32()),
                        ("speaker", pa.string()), ("is_target", pa.bool_()), ("asr_segment", pa.int32()),
                        ("avg_logprob", pa.float32()), ("no_speech_prob", pa.float32()),
                        ("compression_ratio", pa.float32())])
    return pa.Table.from_pylist(rows, schema=schema)


def write_tone_wav(path: Path, seconds: float, *, seed: int = 0, f0: float = 140.0) -> Path:
    """A voiced-like test signal (harmonics with a slow pitch drift plus a little noise), 16 kHz wav."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.2 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(h * phase) / h for h in range(1, 6)) * 0.2 + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), SR, subtype="PCM_16")
    return path


def prepare_meta(audio_path: Path, recording_id: str, duration_s: float, config_hash: str = "prep0") -> dict:
    """The prepare metadata (docs/CONTRACTS.md, "Metadata") a words table would carry."""
    return {
        "stage": "prepare", "source_path": str(Path(audio_path).resolve()), "recording_id": recording_id,
        "duration_s": duration_s, "input": {"sample_rate": SR, "channels": 1, "codec": "pcm_s16le"},
        "options": {}, "config_hash": config_hash, "models": {}, "target_speaker": None,
    }


def write_prepared(work: Path, recording_id: str, table: pa.Table, meta: dict) -> Path:
    from hilbert_cli.parquet_io import write_table_atomic

    return write_table_atomic(table, Path(work) / "prepare" / "words" / f"{recording_id}.parquet", meta)


_BUILT: dict[str, Path] = {}


def _scratch() -> Path:
    """One temp directory per test process for the tiny models (shared by every test module)."""
    if "root" not in _BUILT:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="hilbert-tiny-embed-"))
        atexit.register(shutil.rmtree, root, True)
        _BUILT["root"] = root
    return _BUILT["root"]


def tiny_model(kind: str) -> Path:
    """Build (once per process) and return the directory of a tiny audio model or "st" (sentence model)."""
    if kind not in _BUILT:
        _BUILT[kind] = build_tiny_sentence_model(_scratch()) if kind == "st" else build_tiny_audio_model(kind, _scratch())
    return _BUILT[kind]


class _Lazy(dict):
    def __missing__(self, kind: str) -> Path:
        return tiny_model(kind)

    def items(self):
        return [(k, self[k]) for k in ("hubert", "wav2vec2", "wav2vec2-group", "wav2vec2-conformer", "whisper")]


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """kind -> directory, built on first use and shared across test modules."""
    return _Lazy()


@pytest.fixture(scope="session")
def tiny_sentence_model() -> Path:
    return tiny_model("st")
