"""The vad-cluster speaker encoders (`campplus`, `resemblyzer`) side by side on real speech.

Three tables, each encoder loaded through hilbert's own `load_speaker_encoder`:
1. Speaker verification on EmoDB's 535 whole 2.0 s clips (10 actors, 7 emotions): EER of the
   cosine score over all (same speaker, different emotion) pairs against all different-speaker
   pairs, the EER against same-gender different-speaker pairs only (the hard case), and
   leave-one-out speaker identification (each clip to the nearest speaker centroid by cosine,
   the clip left out of its own speaker's centroid). The same pairs for both encoders; chance
   EER is 50 %, chance identification 10 %.
2. Speed: one `embed` call on 64 windows of 1.6 s (the first 1.6 s of 64 EmoDB clips) after a
   warm-up, best of 3, per torch thread count; x real time = 64 * 1.6 s / seconds.
3. Memory: peak RSS added by one first `embed` call on 64 windows of 1.6 s seeded noise
   (ru_maxrss before/after), each encoder/batch setting in a fresh subprocess so the peaks do
   not mask each other.

    .venv/bin/python benchmarks/bench_speaker_encoders.py [--emodb DIR] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_diarization import default_emodb  # noqa: E402  (stdlib + numpy only: children start small)

ENCODERS = ("campplus", "resemblyzer")
MALE = {"03", "10", "11", "12", "15"}  # EmoDB README; the other five actors are female
N_WIN, WIN_S, SR = 64, 1.6, 16_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def eer(same: np.ndarray, diff: np.ndarray) -> float:
    """Equal error rate of cosine scores (same-speaker pairs positive), from the ROC curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.r_[np.ones(same.size), np.zeros(diff.size)], np.r_[same, diff])
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def verification(emb: np.ndarray, spk: np.ndarray, emo: np.ndarray) -> tuple[float, float, float]:
    """(EER, same-gender EER, leave-one-out speaker-ID accuracy) of unit embeddings."""
    sim = emb @ emb.T
    iu = np.triu_indices(len(spk), k=1)
    s = sim[iu]
    same_spk, same_emo = spk[iu[0]] == spk[iu[1]], emo[iu[0]] == emo[iu[1]]
    male = np.isin(spk, list(MALE))
    same_gender = male[iu[0]] == male[iu[1]]
    pos, neg = s[same_spk & ~same_emo], s[~same_spk]
    all_eer, gender_eer = eer(pos, neg), eer(pos, s[~same_spk & same_gender])
    return all_eer, gender_eer, speaker_id_accuracy(emb, spk)


def speaker_id_accuracy(emb: np.ndarray, spk: np.ndarray) -> float:
    """Leave-one-out speaker identification: each clip to the speaker whose centroid (the clip
    left out of its own speaker's) is nearest by cosine."""
    speakers = sorted(set(spk))
    sums = np.stack([emb[spk == k].sum(0) for k in speakers])
    hits = 0
    for i in range(len(spk)):
        own = speakers.index(spk[i])
        cent = sums.copy()
        cent[own] -= emb[i]  # leave the clip out of its own speaker's centroid
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        hits += int(np.argmax(cent @ emb[i]) == own)
    return hits / len(spk)


def windows(clips: list[np.ndarray]) -> list[np.ndarray]:
    n = int(WIN_S * SR)
    return [np.ascontiguousarray(c[:n], dtype=np.float32) for c in clips[:N_WIN]]


def memory_child(spec: str) -> None:
    """Hidden mode: load one encoder, print the peak RSS (MB) one embed of 64 windows adds."""
    from hilbert_cli.prepare.diarize.speaker_encoders import CamppEncoder, load_speaker_encoder

    name, _, batch = spec.partition(":")
    if batch:
        CamppEncoder.BATCH = int(batch)
    enc = load_speaker_encoder(name, threads=1)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(WIN_S * SR))).astype(np.float32) for _ in range(N_WIN)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    enc.embed(clips)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_mb": before / 1024, "added_mb": (after - before) / 1024}))  # KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emodb", type=Path, default=default_emodb(), help="EmoDB folder (with wav/)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    ap.add_argument("--_mem", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._mem:
        memory_child(args._mem)
        return 0
    files = sorted((args.emodb / "wav").glob("*.wav"))
    if not files:
        print(f"{args.emodb}: no EmoDB wav/ folder (pass --emodb DIR)", file=sys.stderr)
        return 2

    from hilbert_cli.audio import load_audio
    from hilbert_cli.prepare.diarize.speaker_encoders import CamppEncoder, load_speaker_encoder

    # first, while this process is small: Linux carries ru_maxrss over fork+exec, so a child
    # started from a parent that already holds the clips and models would report its peak
    log(f"parent peak RSS before the children: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    mem = {}
    for label, spec in ((f"campplus (BATCH={CamppEncoder.BATCH})", "campplus"),
                        ("campplus (BATCH=64)", "campplus:64"), ("resemblyzer", "resemblyzer")):
        log(f"memory: {label} in a fresh process")
        out = subprocess.run([sys.executable, __file__, "--_mem", spec], check=True, capture_output=True, text=True)
        mem[label] = json.loads(out.stdout.strip().splitlines()[-1])

    log(f"loading {len(files)} EmoDB clips from {args.emodb}")
    clips = [load_audio(str(p)) for p in files]
    spk = np.array([p.name[:2] for p in files])
    emo = np.array([p.name[5] for p in files])
    win = windows(clips)

    ver, speed = {}, {}
    for name in ENCODERS:
        for t in args.threads:
            enc = load_speaker_encoder(name, threads=t)
            if t == args.threads[0]:
                log(f"{name}: embedding {len(clips)} clips")
                ver[name] = verification(enc.embed(clips), spk, emo)
            enc.embed(win)  # warm-up
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                enc.embed(win)
                best = min(best, time.perf_counter() - t0)
            speed[(name, t)] = best
            log(f"{name}: {t} thread(s) {best:.3f} s")

    print(f"## Speaker verification, EmoDB {len(clips)} whole clips (2.0 s), cosine\n")
    print("| encoder | EER (diff. emotion vs diff. speaker) | EER (same gender) | speaker ID, leave-one-out |")
    print("| --- | --- | --- | --- |")
    print("| chance | 50.0 % | 50.0 % | 10.0 % |")
    for name, (e, g, acc) in ver.items():
        print(f"| {name} | {100 * e:.1f} % | {100 * g:.1f} % | {100 * acc:.1f} % |")
    print(f"\n## Speed: one embed of {N_WIN} windows of {WIN_S} s, best of 3 after a warm-up\n")
    print("| encoder | torch threads | seconds | x real time |")
    print("| --- | --- | --- | --- |")
    for (name, t), s in speed.items():
        print(f"| {name} | {t} | {s:.3f} | {N_WIN * WIN_S / s:.0f}x |")
    print(f"\n## Memory: peak RSS added by the first embed of {N_WIN} windows (fresh process each, 1 thread)\n")
    print("| encoder | RSS before (MB) | peak added (MB) |")
    print("| --- | --- | --- |")
    for label, m in mem.items():
        print(f"| {label} | {m['before_mb']:.0f} | {m['added_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
