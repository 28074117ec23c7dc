"""Test material for the audio front end, built offline in the test run (no network, no hub).

Plain functions (importable by any test module) plus pytest fixtures wrapping them:

- synth_speech(text, path, voice, pitch, speed): espeak-ng speech as a 16 kHz mono 16-bit wav;
- two_speaker_interview(path, turns): two distinct espeak-ng voices taking turns, joined by sox
  with short silences; returns the reference turns (speaker, start_s, end_s, text);
- build_tiny_whisper_ct2(out_dir): a tiny random transformers Whisper converted to
  CTranslate2 (with tokenizer.json), loadable by faster_whisper.WhisperModel(out_dir);
- build_tiny_pyannote_pipeline(out_dir): a pyannote.audio SpeakerDiarization pipeline
  directory (config.yaml + random PyanNet segmentation + random WeSpeakerResNet34 embedding),
  loadable by pyannote.audio.Pipeline.from_pretrained(out_dir) with no hub.

Use them through the session-scoped fixtures (`tiny_whisper_dir`, `tiny_pyannote_dir`,
`interview_wav`) so each is built once per test session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SAMPLE_RATE = 16_000

#: espeak-ng settings for the two speakers of `two_speaker_interview` (voice, pitch, speed):
#: a low male voice and a high female variant, well apart for a speaker encoder.
DEFAULT_VOICES: dict[str, tuple[str, int, int]] = {
    "A": ("en-us", 35, 150),
    "B": ("en+f3", 75, 170),
}

#: short known English text for ASR tests (Whisper tiny.en transcribes espeak-ng well)
KNOWN_SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "we went to the market on monday morning to buy some bread",
    "my favourite colour is green and my brother likes blue",
    "please call me tomorrow after lunch if you have time",
    "the weather was cold but the children played outside all day",
]

INTERVIEW_TURNS: list[tuple[str, str]] = [
    ("A", "hello and thank you for coming in today how have you been feeling this week"),
    ("B", "i have been feeling a little tired but mostly fine thank you for asking"),
    ("A", "can you tell me more about your sleep over the last few nights"),
    ("B", "i usually go to bed at eleven and wake up around seven in the morning"),
    ("A", "that sounds quite regular do you feel rested when you wake up"),
    ("B", "not always sometimes i wake up during the night and cannot fall asleep again"),
]


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def synth_speech(text: str, path: Path, voice: str = "en-us", pitch: int = 50, speed: int = 150) -> Path:
    """Speak `text` with espeak-ng into `path`: 16 kHz mono 16-bit PCM wav. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        raw = Path(td) / "raw.wav"
        _run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(raw), text])
        _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(path)])
    return path


def _trim_silence(src: Path, dst: Path) -> None:
    # strip espeak-ng's leading/trailing silence so the reference turn times are speech times
    _run(["sox", str(src), str(dst), "silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse"])


def _duration_s(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def two_speaker_interview(
    path: Path,
    turns: list[tuple[str, str]] | None = None,
    *,
    gap_s: float = 0.6,
    lead_s: float = 0.5,
    voices: dict[str, tuple[str, int, int]] | None = None,
) -> tuple[Path, list[tuple[str, float, float, str]]]:
    """Synthesise an interview: each (speaker, text) turn in that speaker's voice, joined with
    `gap_s` of silence (and `lead_s` before the first / after the last turn).

    Speakers map to `voices` (default DEFAULT_VOICES: "A" low male, "B" high female; other
    labels cycle through those two). Returns (path, [(speaker, start_s, end_s, text), ...]),
    the times of the speech itself (leading/trailing silence of each piece trimmed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    turns = list(turns if turns is not None else INTERVIEW_TURNS)
    voices = dict(voices or DEFAULT_VOICES)
    fallback = list(DEFAULT_VOICES.values())
    ref: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        silence = td / "gap.wav"
        lead = td / "lead.wav"
        _run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(silence), "trim", "0", f"{gap_s}"])
        _run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(lead), "trim", "0", f"{lead_s}"])
        pieces: list[Path] = [lead]
        t = lead_s
        speakers_seen: list[str] = []
        for i, (speaker, text) in enumerate(turns):
            if speaker not in voices:
                if speaker not in speakers_seen:
                    speakers_seen.append(speaker)
                voices[speaker] = fallback[speakers_seen.index(speaker) % len(fallback)]
            voice, pitch, speed = voices[speaker]
            raw = synth_speech(text, td / f"raw{i}.wav", voice=voice, pitch=pitch, speed=speed)
            trimmed = td / f"turn{i}.wav"
            _trim_silence(raw, trimmed)
            d = _duration_s(trimmed)
            if i:
                pieces.append(silence)
                t += gap_s
            pieces.append(trimmed)
            ref.append((speaker, round(t, 4), round(t + d, 4), text))
            t += d
        pieces.append(lead)
        _run(["sox", *map(str, pieces), str(path)])
    return path, ref


def make_tone_wav(path: Path, seconds: float, *, rate: int = SAMPLE_RATE, channels: int = 1, freq: float = 440.0) -> Path:
    """A sine tone (handy for decode tests; channel c gets freq * (c + 1))."""
    import numpy as np
    import soundfile as sf

    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    data = np.stack([0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype("float32"), rate, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------- tiny Whisper


def _whisper_tokenizer(out_dir: Path, n_timestamps: int = 1501):
    """Byte-level BPE with Whisper's special tokens in Whisper's (English-only) order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = ByteLevel.alphabet()
    # GPT-2 byte order: bytes_to_unicode() maps each byte to one printable character
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_chars = [chr(c) for _, c in sorted(zip(bs, cs))]
    assert set(byte_chars) == set(alphabet)
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    tok.add_special_tokens(specials)
    tok.add_tokens(["<|%.2f|>" % (i * 0.02) for i in range(n_timestamps)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    )
    fast.save_pretrained(str(out_dir))
    ids = {s: tok.token_to_id(s) for s in specials}
    return tok.get_vocab_size(), ids


def build_tiny_whisper_ct2(out_dir: Path) -> Path:
    """A tiny random Whisper (d_model 64, 2+2 layers) as a CTranslate2 directory for faster-whisper.

    Random weights: the transcripts are gibberish, but every code path (mel features, VAD,
    word timestamps, segment statistics) is the real one. Returns `out_dir`.
    """
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    out_dir = Path(out_dir)
    if (out_dir / "model.bin").is_file() and (out_dir / "tokenizer.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as td:
        hf_dir = Path(td) / "hf"
        hf_dir.mkdir()
        vocab_size, ids = _whisper_tokenizer(hf_dir)
        eot, sot, notimestamps = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
        config = WhisperConfig(
            vocab_size=vocab_size,
            num_mel_bins=80,
            d_model=64,
            encoder_layers=2,
            encoder_attention_heads=2,
            decoder_layers=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
            max_source_positions=1500,
            max_target_positions=448,
            pad_token_id=eot,
            bos_token_id=eot,
            eos_token_id=eot,
            decoder_start_token_id=sot,
            suppress_tokens=[],
            begin_suppress_tokens=[32, eot],  # byte " " is token 32 in this vocabulary
        )
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config).eval()
        # make the end-of-text token likely so random decoding stops early (fast tests)
        with torch.no_grad():
            emb = model.model.decoder.embed_tokens.weight
            emb[eot] = emb[eot] * 4.0
        gen = GenerationConfig(
            decoder_start_token_id=sot,
            eos_token_id=eot,
            pad_token_id=eot,
            bos_token_id=eot,
            no_timestamps_token_id=notimestamps,
            suppress_tokens=[],
            begin_suppress_tokens=[32, eot],
            max_length=448,
            is_multilingual=False,
            alignment_heads=[[1, 0], [1, 1]],
        )
        model.generation_config = gen
        model.save_pretrained(str(hf_dir))
        WhisperFeatureExtractor(feature_size=80).save_pretrained(str(hf_dir))
        tmp_out = Path(td) / "ct2"
        from ctranslate2.converters import TransformersConverter

        # the same converter as `ct2-transformers-converter --model DIR --output_dir OUT
        # --copy_files tokenizer.json preprocessor_config.json --quantization int8`, in-process
        TransformersConverter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
            str(tmp_out), quantization="int8"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.move(str(tmp_out), str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- tiny pyannote


def _save_pyannote_checkpoint(model, path: Path) -> None:
    import pytorch_lightning as pl
    import torch
    from pyannote.audio import __version__ as pa_version

    ckpt = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": pl.__version__,
        "epoch": 0,
        "global_step": 0,
        "pyannote.audio": {
            "versions": {"pyannote.audio": pa_version},
            "architecture": {"module": model.__class__.__module__, "class": model.__class__.__name__},
            "specifications": getattr(model, "_specifications", None),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, str(path))


def build_tiny_pyannote_pipeline(
    out_dir: Path,
    *,
    duration_s: float = 5.0,
    clustering: str = "AgglomerativeClustering",
    embedding: str = "wespeaker",
    segmentation_step: float = 0.5,
) -> Path:
    """A local pyannote.audio SpeakerDiarization pipeline from tiny random models. Returns `out_dir`.

    out_dir/config.yaml, out_dir/segmentation/pytorch_model.bin (PyanNet, powerset 3 speakers /
    2 per frame, `duration_s` windows), out_dir/embedding/pytorch_model.bin (WeSpeakerResNet34,
    or with embedding="xvector" a small XVectorMFCC - several times faster on CPU),
    out_dir/plda/{xvec_transform,plda}.npz (a trivial PLDA, so VBx clustering also loads).
    """
    import numpy as np
    import torch
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34, XVectorMFCC
    from pyannote.audio.models.segmentation import PyanNet

    out_dir = Path(out_dir)
    if (out_dir / "config.yaml").is_file():
        return out_dir
    torch.manual_seed(0)
    seg = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 16, "num_layers": 1, "bidirectional": True, "monolithic": True, "dropout": 0.0},
        linear={"hidden_size": 16, "num_layers": 1},
    )
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=float(duration_s),
        min_duration=float(duration_s),
        warm_up=(0.0, 0.0),
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    seg.setup()
    seg.eval()
    _save_pyannote_checkpoint(seg, out_dir / "segmentation" / "pytorch_model.bin")

    emb = XVectorMFCC(dimension=64) if embedding == "xvector" else WeSpeakerResNet34()
    emb.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=float(duration_s)
    )
    emb.eval()
    _save_pyannote_checkpoint(emb, out_dir / "embedding" / "pytorch_model.bin")
    dim = int(emb.dimension)

    lda_dim = min(128, dim)
    plda_dir = out_dir / "plda"
    plda_dir.mkdir(parents=True, exist_ok=True)
    np.savez(plda_dir / "xvec_transform.npz", mean1=np.zeros(dim), mean2=np.zeros(lda_dim), lda=np.eye(dim)[:, :lda_dim])
    np.savez(plda_dir / "plda.npz", mu=np.zeros(lda_dim), tr=np.eye(lda_dim), psi=np.linspace(2.0, 1.0, lda_dim))

    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": {"checkpoint": str((out_dir / "segmentation").resolve())},
                "embedding": {"checkpoint": str((out_dir / "embedding").resolve())},
                "plda": {"checkpoint": str(plda_dir.resolve())},
                "clustering": clustering,
                "embedding_exclude_overlap": True,
                "segmentation_step": float(segmentation_step),
                "embedding_batch_size": 8,
                "segmentation_batch_size": 8,
            },
        },
        "params": {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": (
                {"method": "centroid", "min_cluster_size": 2, "threshold": 0.7}
                if clustering == "AgglomerativeClustering"
                else {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}
            ),
        },
    }
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out_dir


# --------------------------------------------------------------------------- pytest fixtures

requires_espeak = pytest.mark.skipif(not (have_tool("espeak-ng") and have_tool("sox")), reason="needs espeak-ng and sox")


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    return build_tiny_whisper_ct2(tmp_path_factory.mktemp("tiny_whisper") / "ct2")


@pytest.fixture(scope="session")
def tiny_pyannote_dir(tmp_path_factory) -> Path:
    return build_tiny_pyannote_pipeline(tmp_path_factory.mktemp("tiny_pyannote") / "pipeline")


@pytest.fixture(scope="session")
def interview_wav(tmp_path_factory) -> tuple[Path, list[tuple[str, float, float, str]]]:
    """The default two-voice interview (INTERVIEW_TURNS), about 30 s: (path, reference turns)."""
    if not (have_tool("espeak-ng") and have_tool("sox")):
        pytest.skip("needs espeak-ng and sox")
    return two_speaker_interview(tmp_path_factory.mktemp("interview") / "interview.wav", INTERVIEW_TURNS)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> tuple[Path, str]:
    """One voice reading KNOWN_SENTENCES (about 20 s): (path, text)."""
    if not (have_tool("espeak-ng") and have_tool("sox")):
        pytest.skip("needs espeak-ng and sox")
    text = ". ".join(KNOWN_SENTENCES) + "."
    return synth_speech(text, tmp_path_factory.mktemp("speech") / "speech.wav", voice="en-us", pitch=50, speed=150), text


def write_json(path: Path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))
    return path


def run_main(args) -> int:
    """Run the console entry point in-process; its exit code."""
    import sys

    from hilbert_cli.cli import main

    old = sys.argv
    sys.argv = ["hilbert", *map(str, args)]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0
