"""Throughput of `hilbert embed`: segments per second for each encoder, and for segmentation.

CPU (always): `spec`, tiny random HuBERT / wav2vec2 / wav2vec2-conformer / Whisper configs
(real loading and batching code, toy sizes: the figure measures our pipeline overhead, not
the real model), a tiny sentence-transformers model, the real all-MiniLM-L6-v2 when the
[offline] extra is installed, and the emotion-shift segmenter (lexicons + prosody).
GPU (when CUDA is present, or --gpu): real-size random-weight HuBERT-large and
Whisper-medium encoders (no download: built from their configs), fp32 and autocast.

    python benchmarks/bench_embed.py [--segments 96] [--seg-s 6.5] [--threads 2] [--memory 5,60]

--memory M1,M2: also run `embed_work_dir` (spec + a tiny sentence model, prosody on) on one
synthetic recording of M1 and M2 minutes, each in a fresh process, and print peak RSS and
x real time: memory must not grow with recording length.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16_000


def fake_segments(n: int, mean_s: float, seed: int = 0) -> list[np.ndarray]:
    """Segment-like clips: lengths spread around mean_s (2 to 2.5x mean), voiced-ish content."""
    rng = np.random.default_rng(seed)
    lens = np.clip(rng.gamma(4.0, mean_s / 4.0, n), 1.0, 2.5 * mean_s)
    out = []
    for s in lens:
        t = np.arange(int(s * SR)) / SR
        f0 = rng.uniform(90, 250)
        x = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(t.size)
        out.append(x.astype(np.float32))
    return out


def run_audio(name: str, enc, clips: list[np.ndarray], window: int = 32) -> dict:
    enc.embed(clips[:2])  # warm-up
    t0 = time.perf_counter()
    for k in range(0, len(clips), window):
        enc.embed(clips[k : k + window])
    dt = time.perf_counter() - t0
    audio_s = sum(c.size for c in clips) / SR
    return {"encoder": name, "dim": enc.dim, "segments": len(clips), "s": dt, "seg/s": len(clips) / dt, "xRT": audio_s / dt}


def run_text(name: str, enc, texts: list[str]) -> dict:
    enc.embed(texts[:2])
    t0 = time.perf_counter()
    enc.embed(texts)
    dt = time.perf_counter() - t0
    return {"encoder": name, "dim": enc.dim, "segments": len(texts), "s": dt, "seg/s": len(texts) / dt, "xRT": float("nan")}


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'encoder':34s} {'dim':>5s} {'segs':>5s} {'seconds':>8s} {'seg/s':>9s} {'x RT':>8s}")
    for r in rows:
        print(f"{r['encoder']:34s} {r['dim']:5d} {r['segments']:5d} {r['s']:8.2f} {r['seg/s']:9.1f} {r['xRT']:8.1f}")


def bench_segmenter(tmp: Path, n_words: int, threads: int) -> dict:
    from tests.fixtures_embed import words_table, write_tone_wav
    from hilbert_cli.segment import SegmentOptions
    from hilbert_cli.segment.segmenter import Segmenter

    base = ["I absolutely love my wonderful family and we are so happy together.",
            "The table is in the room next to the door of the house.",
            "But then my father died and everything became terrible and sad.",
            "We moved to another town, and I started at a new school that year."]
    sents = (base * (n_words // 40 + 1))
    words = words_table(sents)
    dur = float(words.column("end_s")[-1].as_py()) + 1
    wav = write_tone_wav(tmp / "seg.wav", dur)
    out = {}
    for prosody in (False, True):
        s = Segmenter(SegmentOptions(emotion="off", prosody=prosody))
        s.segment(words.slice(0, 50), audio_path=str(wav))  # warm-up (imports)
        t0 = time.perf_counter()
        segs = s.segment(words, audio_path=str(wav))
        dt = time.perf_counter() - t0
        out[prosody] = {"encoder": f"segmenter (prosody={'on' if prosody else 'off'})", "dim": 0,
                        "segments": segs.num_rows, "s": dt, "seg/s": segs.num_rows / dt, "xRT": dur / dt}
        mean_w = float(np.mean(segs.column("n_words").to_numpy()))
        mean_s = float(np.mean(segs.column("end_s").to_numpy() - segs.column("start_s").to_numpy()))
        out[prosody]["encoder"] += f" {mean_w:.1f} w/{mean_s:.1f} s"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", type=int, default=96)
    ap.add_argument("--seg-s", type=float, default=6.5, help="mean segment length (the paper: about 6.5 s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gpu", action="store_true", help="also run the real-size GPU section (default: when CUDA exists)")
    ap.add_argument("--gpu-segments", type=int, default=512)
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU section (a machine without the CPU extras)")
    ap.add_argument("--memory", default="", help="comma-separated minutes for the memory check, e.g. 5,60")
    ap.add_argument("--_memory-run", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memory_run is not None:
        return memory_run(args._memory_run, args.threads)

    import torch

    torch.set_num_threads(args.threads)
    if args.gpu_only:
        return gpu_section(args)
    from tests.fixtures_embed import build_tiny_audio_model, build_tiny_sentence_model
    from hilbert_cli.embed.encoders import load_audio_encoder, load_text_encoder

    clips = fake_segments(args.segments, args.seg_s)
    texts = [" ".join(["I felt really happy about my family and the time we spent together"] * 2)] * args.segments
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows.append(run_audio("spec (log-mel stats)", load_audio_encoder("spec", device="cpu"), clips))
        for kind in ("hubert", "wav2vec2", "wav2vec2-conformer", "whisper"):
            p = build_tiny_audio_model(kind, tmp)
            rows.append(run_audio(f"tiny {kind} (random, d=32)", load_audio_encoder(str(p), device="cpu"), clips))
        st = build_tiny_sentence_model(tmp)
        rows.append(run_text("tiny sentence-transformers (d=24)", load_text_encoder(str(st), device="cpu"), texts))
        try:
            rows.append(run_text("allMiniLM6 (real, offline extra)", load_text_encoder("allMiniLM6", device="cpu"), texts))
        except Exception as exc:  # the [offline] extra is not installed
            print(f"allMiniLM6 skipped: {exc}")
        seg = bench_segmenter(tmp, 2000, args.threads)
        rows += [seg[False], seg[True]]
    print_table(f"CPU, {args.threads} torch threads, {args.segments} segments of ~{args.seg_s} s", rows)

    if args.memory:
        memory_section([float(m) for m in args.memory.split(",")], args.threads)
    if torch.cuda.is_available() or args.gpu:
        gpu_section(args)
    else:
        print("\nGPU section skipped: no CUDA device here (run on a GPU machine for HuBERT-large / Whisper-medium figures)")


def memory_run(minutes: float, threads: int) -> None:
    """In a fresh process: one synthetic recording of `minutes`, embedded end to end; prints one JSON line."""
    import json
    import resource
    import subprocess

    import torch

    torch.set_num_threads(threads)
    from tests.fixtures_embed import build_tiny_sentence_model, prepare_meta, words_table, write_prepared
    from hilbert_cli.embed.options import EmbedOptions
    from hilbert_cli.embed.pipeline import embed_work_dir
    from hilbert_cli.segment.options import SegmentOptions

    base = ["I absolutely love my wonderful family and we are so happy together.",
            "The table is in the room next to the door of the house.",
            "But then my father died and everything became terrible and sad.",
            "We moved to another town, and I started at a new school that year."]
    n = int(minutes * 60 / (13 * 0.38 + 0.25))
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        t = words_table((base * (n // 4 + 1))[:n], recording_id="long")
        dur = float(t.column("end_s")[-1].as_py()) + 1.0
        # the audio is written by another process, so its samples never count in this RSS
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
                        "from tests.fixtures_embed import write_tone_wav; write_tone_wav(Path(sys.argv[2]), float(sys.argv[3]))",
                        str(ROOT), str(root / "long.wav"), str(dur)], check=True)
        write_prepared(root / "work", "long", t, prepare_meta(root / "long.wav", "long", dur))
        st = build_tiny_sentence_model(root)
        opts = EmbedOptions(audio="spec", text=str(st), device="cpu", segment=SegmentOptions(emotion="off"))
        from hilbert_cli.embed.pipeline import Embedder

        Embedder(opts).load()  # imports + model loading counted before the run
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        r = embed_work_dir(root / "work", opts, show_progress=False)
        dt = time.perf_counter() - t0
        assert len(r.done) == 1, r.failed
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"minutes": minutes, "words": t.num_rows, "seconds": dt, "rss_mb": rss, "rss_before_mb": rss0, "xRT": dur / dt}))


def memory_section(minutes: list[float], threads: int) -> None:
    import json
    import subprocess

    print(f"\nmemory: embed_work_dir (spec + tiny sentence model, prosody on), one recording per process")
    rows = []
    for m in minutes:
        out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--_memory-run", str(m)],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        r = rows[-1]
        print(f"  {r['minutes']:6.1f} min  {r['words']:6d} words  {r['seconds']:7.1f} s  {r['xRT']:6.1f}x RT  peak RSS {r['rss_mb']:.0f} MB (after loading: {r['rss_before_mb']:.0f} MB)")
    if len(rows) > 1:
        print(f"  peak RSS ratio longest/shortest: {rows[-1]['rss_mb'] / rows[0]['rss_mb']:.2f}")


def gpu_section(args) -> None:
    import torch
    import transformers as tf

    from hilbert_cli.embed.encoders import load_audio_encoder

    clips = fake_segments(args.gpu_segments, args.seg_s, seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        hub = tf.HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                              feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
        tf.HubertModel(hub).save_pretrained(tmp / "hubert-large")
        tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(tmp / "hubert-large")
        wh = tf.WhisperConfig(d_model=1024, encoder_layers=24, decoder_layers=1, encoder_attention_heads=16,
                              decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, num_mel_bins=80)
        tf.WhisperModel(wh).save_pretrained(tmp / "whisper-medium")
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp / "whisper-medium")
        for name in ("hubert-large", "whisper-medium"):
            for autocast in (False, True):
                for bs in (8, 32):
                    enc = load_audio_encoder(str(tmp / name), device="cuda", autocast=autocast, batch_size=bs)
                    r = run_audio(f"{name} bs={bs} {'autocast' if autocast else 'fp32'}", enc, clips, window=256)
                    torch.cuda.synchronize()
                    rows.append(r)
                    del enc
                    torch.cuda.empty_cache()
    print_table(f"GPU {torch.cuda.get_device_name(0)}, random-weight real-size configs, {len(clips)} segments", rows)


if __name__ == "__main__":
    main()
