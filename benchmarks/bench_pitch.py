"""Pitch trackers for segmentation's prosody signal: speed and agreement on real speech (EmoDB).

A span's median F0 (what segmentation uses) from: hilbert's (segment/prosody.py: librosa YIN,
loud and non-flat frames), librosa's pYIN, opensmile's eGeMAPSv02 F0 ([egemaps] extra) and,
as the reference, torchcrepe's CNN (`pip install torchcrepe resampy`, not a hilbert
dependency; its weights ship in the wheel). Each runs on the same utterances in one thread;
prints x real time and how often a span's median is more than a semitone (or an octave, 600
cents) from the reference.

    python benchmarks/bench_pitch.py [--emodb ../shared/data/emodb/wav] [--n 40] [--crepe tiny|full]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SR = 16_000


def _median(f0: np.ndarray, ok: np.ndarray) -> float:
    return float(np.median(f0[ok])) if ok.any() else float("nan")


def trackers(crepe_model: str) -> dict:
    import librosa

    from hilbert_cli.segment.prosody import F0_MAX, F0_MIN, span_pitch

    out = {"hilbert (librosa YIN)": span_pitch}

    def pyin(x):
        f0, voiced, _ = librosa.pyin(x, fmin=F0_MIN, fmax=F0_MAX, sr=SR, frame_length=1024, hop_length=320)
        return _median(f0, voiced)

    out["librosa pYIN"] = pyin
    if importlib.util.find_spec("opensmile"):
        import opensmile

        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.LowLevelDescriptors)

        def osm(x):
            st = smile.process_signal(x, SR)["F0semitoneFrom27.5Hz_sma3nz"].to_numpy()
            return float(27.5 * 2 ** (np.median(st[st > 0]) / 12)) if (st > 0).any() else float("nan")

        out["opensmile eGeMAPS F0"] = osm
    if importlib.util.find_spec("torchcrepe"):
        import torch
        import torchcrepe

        def crepe(x):
            f0, per = torchcrepe.predict(torch.from_numpy(x)[None], SR, 160, F0_MIN, F0_MAX, crepe_model,
                                         return_periodicity=True, batch_size=512, device="cpu")
            return _median(f0[0].numpy(), per[0].numpy() > 0.5)

        out[f"torchcrepe {crepe_model} (reference)"] = crepe
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emodb", type=Path, default=ROOT.parent / "shared" / "data" / "emodb" / "wav")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--crepe", default="tiny")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from hilbert_cli.audio import load_audio

    paths = sorted(args.emodb.glob("*.wav"))
    if not paths:
        raise SystemExit(f"no EmoDB .wav files under {args.emodb} (pass --emodb)")
    rng = np.random.default_rng(0)
    clips = [load_audio(paths[i]) for i in rng.choice(len(paths), min(args.n, len(paths)), replace=False)]
    total = sum(c.size for c in clips) / SR
    print(f"{len(clips)} EmoDB utterances, {total:.0f} s; one thread; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores at start (other jobs were running)")
    res = {}
    for name, fn in trackers(args.crepe).items():
        fn(clips[0])  # warm
        t = time.perf_counter()
        res[name] = np.array([fn(c) for c in clips])
        dt = time.perf_counter() - t
        print(f"{name:34s} {total / dt:7.1f} x real time", flush=True)
    ref = next((v for k, v in res.items() if "reference" in k), None)
    if ref is None:
        print("(no torchcrepe: no agreement figures)")
        return
    for name, v in res.items():
        ok = np.isfinite(v) & np.isfinite(ref)
        cents = 1200 * np.abs(np.log2(v[ok] / ref[ok]))
        print(f"{name:34s} vs reference: median {np.median(cents):4.0f} cents, > 1 semitone {np.mean(cents > 100):4.0%}, "
              f"> octave/2 {np.mean(cents > 600):4.0%}, no pitch {np.mean(~np.isfinite(v)):4.0%}")


if __name__ == "__main__":
    main()
