"""Diarization on real speech: speaker counts and DER on documents built from EmoDB.

EmoDB (real German emotional speech, 10 actors, 2.0 s utterances at 22.05 kHz; speaker =
first two characters of the file name) is assembled into
  - single-speaker documents: 20-40 utterances of one speaker, mixed emotions, 0.3-1 s gaps;
  - 2- and 3-speaker conversations: alternating turns of 1-3 utterances of different speakers.
The real diarizer (`vad-cluster` by default) runs on each; printed: the share of
single-speaker documents found as one speaker, the distribution of found speaker counts, and
DER (pyannote.metrics, collar 0.25 s) on the conversations. Every figure is given for the
speakers used to tune the defaults (--tune-speakers) and for the held-out speakers apart, so
an overfitted threshold shows.

    python benchmarks/bench_diarization.py [--n-single 40] [--n-conv 20] [--full]
    python benchmarks/bench_diarization.py --code /tmp/base     # the same documents, other code
    python benchmarks/bench_diarization.py --clustering nap-kmeans [--known-count]
    python benchmarks/bench_diarization.py --full --cache /tmp/diar_cache --loso [--nap-k 12]
    python benchmarks/bench_diarization.py --full --cache /tmp/diar_cache --loso --seeds 0,1,2,3,4,5   # spread over draws
    python benchmarks/bench_diarization.py --fit-nap hilbert_cli/prepare/diarize/resemblyzer_emotion_nap.npy --nap-k 12

--known-count gives the diarizer each document's true speaker count (`--num-speakers N`).
--fit-nap writes the emotion directions of `clustering = "nap-kmeans"`
(prepare/diarize/speaker_space.py) from the tuning speakers' utterances only. --cache keeps each
document's embeddings (a full run then takes seconds, same figures as the diarizer); --loso
clusters each tuning document with directions fitted leaving its speakers out (no in-sample
figures for the speakers the settings are chosen on). --seeds runs several draws of documents and
summarises them (mean ± sd over draws, range, held-out 2-speaker DER per speaker pair).

--code DIR imports hilbert_cli from DIR (e.g. an untouched checkout) instead of this tree.
The reference of an utterance is its span minus the zero padding at its end (this EmoDB copy
pads short utterances with exact zeros).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: speakers the defaults were tuned on (3 male, 2 female); the other five are held out
TUNE_SPEAKERS = ("03", "10", "11", "08", "09")
SR = 22_050


def default_emodb() -> Path:
    """../shared/data/emodb beside the repository (CI layout), else /work/shared/data/emodb."""
    for p in (ROOT.parent / "shared" / "data" / "emodb", Path("/work/shared/data/emodb")):
        if (p / "wav").is_dir():
            return p
    return ROOT.parent / "shared" / "data" / "emodb"


def read_wav(path: Path) -> np.ndarray:
    """16-bit mono WAV -> int16 samples (EmoDB's format; stdlib only)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != SR:
            raise ValueError(f"{path}: expected 16-bit mono {SR} Hz")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def speech_end(x: np.ndarray) -> int:
    """Index after the last non-zero sample (the padding of this copy is exact zeros)."""
    nz = np.flatnonzero(np.abs(x.astype(np.int32)) > 1)
    return int(nz[-1]) + 1 if nz.size else 0


@dataclass
class Document:
    name: str
    kind: str  # "single" | "conv2" | "conv3"
    group: str  # "tune" | "held-out"
    speakers: list[str]
    pieces: list[tuple[str, Path]] = field(default_factory=list)  # (speaker, utterance file)
    gaps: list[float] = field(default_factory=list)  # silence before each piece, seconds

    def reference(self, cache: dict) -> list[tuple[float, float, str]]:
        """(start_s, end_s, speaker) of each utterance's speech, as render() places it."""
        ref, pos = [], 0
        for (spk, f), gap in zip(self.pieces, self.gaps):
            if f not in cache:
                cache[f] = read_wav(f)
            pos += int(round(gap * SR))
            ref.append((pos / SR, (pos + speech_end(cache[f])) / SR, spk))
            pos += cache[f].size
        return ref

    def render(self, out: Path, cache: dict) -> list[tuple[float, float, str]]:
        """Write the document as a WAV; returns the reference (start_s, end_s, speaker)."""
        chunks, ref, pos = [], [], 0
        for (spk, f), gap in zip(self.pieces, self.gaps):
            x = cache.setdefault(f, read_wav(f))
            n_gap = int(round(gap * SR))
            chunks.append(np.zeros(n_gap, np.int16))
            pos += n_gap
            ref.append((pos / SR, (pos + speech_end(x)) / SR, spk))
            chunks.append(x)
            pos += x.size
        chunks.append(np.zeros(int(0.5 * SR), np.int16))
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes(np.concatenate(chunks).tobytes())
        return ref


def by_speaker(wav_dir: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted(wav_dir.glob("*.wav")):
        out.setdefault(f.name[:2], []).append(f)
    return out


def single_docs(files: dict[str, list[Path]], speakers: list[str], n: int, group: str, rng) -> list[Document]:
    docs = []
    for i in range(n):
        spk = speakers[i % len(speakers)]
        k = min(int(rng.integers(20, 41)), len(files[spk]))
        picks = rng.choice(len(files[spk]), size=k, replace=False)
        d = Document(f"{group}-single-{i:03d}", "single", group, [spk])
        d.pieces = [(spk, files[spk][j]) for j in picks]
        d.gaps = [0.5] + rng.uniform(0.3, 1.0, k - 1).tolist()
        docs.append(d)
    return docs


def conversations(files: dict[str, list[Path]], speakers: list[str], n: int, n_spk: int, group: str, rng) -> list[Document]:
    """Alternating turns of 1-3 utterances; the next turn goes to another speaker."""
    docs = []
    for i in range(n):
        who = [str(s) for s in rng.choice(speakers, size=n_spk, replace=False)]
        d = Document(f"{group}-conv{n_spk}-{i:03d}", f"conv{n_spk}", group, who)
        n_utt = int(rng.integers(20, 31))
        cur = who[0]
        while len(d.pieces) < n_utt:
            for _ in range(int(rng.integers(1, 4))):
                d.pieces.append((cur, files[cur][int(rng.integers(len(files[cur])))]))
            cur = str(rng.choice([s for s in who if s != cur]))
        d.gaps = [0.5] + rng.uniform(0.3, 1.0, len(d.pieces) - 1).tolist()
        # every speaker speaks at least once (3 speakers: a random walk could skip one)
        seen = {s for s, _ in d.pieces}
        for s in who:
            if s not in seen:
                d.pieces.append((s, files[s][0]))
                d.gaps.append(0.6)
        docs.append(d)
    return docs


def build(emodb: Path, n_single: int, n_conv: int, tune: tuple[str, ...], seed: int) -> list[Document]:
    """The same documents for a given seed and sizes, whatever code is measured."""
    files = by_speaker(emodb / "wav")
    rng = np.random.default_rng(seed)
    groups = {"tune": [s for s in files if s in tune], "held-out": [s for s in files if s not in tune]}
    docs: list[Document] = []
    for g, spk in groups.items():
        docs += single_docs(files, spk, n_single // 2, g, rng)
        docs += conversations(files, spk, n_conv // 2, 2, g, rng)
        docs += conversations(files, spk, max(1, n_conv // 4), 3, g, rng)
    return docs


def der(ref: list[tuple[float, float, str]], turns: list[tuple[float, float, str]], duration_s: float) -> dict:
    """DER (collar 0.25 s) over the whole document, and its parts as shares of the reference speech."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    r, h = Annotation(), Annotation()
    for s, e, k in ref:
        r[Segment(s, e)] = k
    for s, e, k in turns:
        h[Segment(s, e)] = k
    metric = DiarizationErrorRate(collar=0.25)
    c = metric(r, h, uem=Timeline([Segment(0.0, duration_s)]), detailed=True)
    total = max(c["total"], 1e-9)
    return {"der": c["diarization error rate"], "confusion": c["confusion"] / total,
            "miss": c["missed detection"] / total, "false_alarm": c["false alarm"] / total, "total_s": total}


def doc_row(d: Document, ref: list, turns: list, duration_s: float, seconds: float) -> dict:
    """One document's figures: speakers found (and DER for a conversation) of the turns found."""
    row = {"name": d.name, "kind": d.kind, "group": d.group, "true": len(d.speakers), "speakers": sorted(set(d.speakers)),
           "found": len({k for _, _, k in turns}), "audio_s": duration_s, "s": seconds}
    if d.kind != "single":
        row.update(der(ref, turns, duration_s))
    return row


def make_diarizer(args, num_speakers: int | None = None):
    from hilbert_cli.prepare.diarize import load_diarizer
    from hilbert_cli.prepare.options import PrepareOptions

    kw = {"diarization": args.diarization, "cpu_threads": args.threads, "num_speakers": num_speakers,
          "speaker_encoder": args.speaker_encoder}
    if args.clustering:  # older code has no such option
        kw["clustering"] = args.clustering
    return load_diarizer(PrepareOptions(**{k: v for k, v in kw.items() if v is not None}), device="cpu")


def fit_nap(emodb: Path, tune: tuple[str, ...], out: Path, k: int = 5, cache: Path | None = None,
            encoder: str = "resemblyzer") -> None:
    """Emotion directions from the tuning speakers' utterances (one averaged embedding each)."""
    from hilbert_cli.prepare.diarize.speaker_space import fit_projection

    by_spk = utterance_embeddings(emodb, tune, cache, encoder)
    u = fit_projection(by_spk, k)
    np.save(out, u)
    print(f"wrote {out}: {u.shape[0]} x {u.shape[1]} emotion directions from speakers {sorted(by_spk)} "
          f"({sum(len(v) for v in by_spk.values())} utterances)")


def suffix(encoder: str) -> str:
    """Cache-file suffix of an encoder's embeddings (none for resemblyzer: caches made before the choice)."""
    return "" if encoder == "resemblyzer" else f"_{encoder}"


def doc_key(d: Document) -> str:
    """The document's content (utterance files and gaps), whatever its name or the run's sizes."""
    import hashlib

    return hashlib.sha1(json.dumps([[f.name for _, f in d.pieces], [round(g, 6) for g in d.gaps]]).encode()).hexdigest()[:20]


def embed_document(diarizer, path: Path) -> dict:
    """vad-cluster's diarize() up to the clustering: VAD regions, embedding windows, one embedding each."""
    from hilbert_cli.audio import SAMPLE_RATE, iter_spans
    from hilbert_cli.prepare.diarize.vad import speech_regions
    from hilbert_cli.prepare.diarize.vad_cluster import embedding_windows

    o = diarizer.options
    probs, n = diarizer.vad.file_probabilities(path, diarizer.chunk_s)
    regions = speech_regions(probs, n, **diarizer.vad_options.regions_kwargs())
    windows = embedding_windows(regions, o.embed_window_s, getattr(o, 'step_s', o.embed_step_s)) if regions else []
    embs = np.zeros((len(windows), diarizer.encoder.dim), np.float32)
    idx, clips = [], []
    for i, clip in iter_spans(path, [(s, e) for s, e, _ in windows], chunk_s=diarizer.chunk_s):
        idx.append(i)
        clips.append(clip)
        if len(clips) >= 64:  # the batches diarize() makes
            embs[idx] = diarizer.encoder.embed(clips)
            idx, clips = [], []
    if clips:
        embs[idx] = diarizer.encoder.embed(clips)
    return {"regions": np.asarray(regions, np.float64).reshape(-1, 2), "windows": np.asarray(windows, np.float64).reshape(-1, 3),
            "embs": embs, "duration_s": n / SAMPLE_RATE}


def cluster_cached(options, c: dict, num_speakers: int | None, projection: np.ndarray | None = None) -> list:
    """vad-cluster's diarize() from the clustering on (the same functions), on cached embeddings."""
    from hilbert_cli.prepare.diarize.base import relabel_by_first_appearance
    from hilbert_cli.prepare.diarize.vad_cluster import cluster, turns_from_windows

    o = options.diarization
    regions = [(float(s), float(e)) for s, e in c["regions"]]
    windows = [(float(s), float(e), int(r)) for s, e, r in c["windows"]]
    if not regions or not windows:
        return [(s, e, "SPEAKER_00") for s, e in regions]
    kw = {"num_speakers": num_speakers, "min_speakers": o.min_speakers, "max_speakers": o.max_speakers,
          "min_share": o.min_speaker_share}
    if o.clustering == "nap-kmeans":
        from hilbert_cli.prepare.diarize.speaker_space import nap_kmeans

        extra = {} if projection is None else {"projection": projection}
        ids = nap_kmeans(c["embs"], windows, encoder=o.speaker_encoder, **kw, **extra)
    else:
        ids = cluster(c["embs"], threshold=o.cluster_threshold, spread_ratio=o.spread_ratio, **kw)
    return turns_from_windows(regions, windows, relabel_by_first_appearance(ids))


def utterance_embeddings(emodb: Path, speakers: tuple[str, ...], cache: Path | None = None,
                         encoder: str = "resemblyzer") -> dict[str, np.ndarray]:
    """One averaged window embedding per utterance of these speakers (what --fit-nap fits on)."""
    from hilbert_cli.prepare.diarize import load_diarizer
    from hilbert_cli.prepare.options import PrepareOptions

    out, d = {}, None
    for spk, files in by_speaker(emodb / "wav").items():
        if spk not in speakers:
            continue
        f_cache = cache / f"utterances_{spk}{suffix(encoder)}.npy" if cache else None
        if f_cache and f_cache.exists():
            out[spk] = np.load(f_cache)
            continue
        d = d or load_diarizer(PrepareOptions(cpu_threads=2, speaker_encoder=encoder))
        vecs = []
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                path = Path(tmp) / "u.wav"
                Document(f.stem, "single", "tune", [spk], [(spk, f)], [0.5]).render(path, {})
                e = embed_document(d, path)["embs"]
                if len(e):
                    vecs.append(e.mean(0))
        out[spk] = np.stack(vecs)
        print(f"speaker {spk}: {len(vecs)} utterances embedded", file=sys.stderr, flush=True)
        if f_cache:
            np.save(f_cache, out[spk])
    return out


def run_cached(docs: list[Document], options, cache: Path, tmp: Path, known: bool, loso: tuple | None) -> list[dict]:
    """As run(), with each document's embeddings computed once into `cache` and clustered here.
    loso = (utterance embeddings of the tuning speakers, k): a tuning document is clustered with
    the emotion directions fitted leaving its own speakers out, so its figures are not in-sample."""
    from hilbert_cli.prepare.diarize import load_diarizer
    from hilbert_cli.prepare.diarize.speaker_space import fit_projection

    cache.mkdir(parents=True, exist_ok=True)
    diarizer, files, rows, projections = None, {}, [], {}
    t0 = time.perf_counter()
    o = options.diarization
    tail = (f"{suffix(o.speaker_encoder)}{'' if o.embed_window_s == 1.6 else f'_w{o.embed_window_s:g}'}"
            f"{'' if o.step_s == 0.8 else f'_s{o.step_s:g}'}.npz")
    for i, d in enumerate(docs):
        f = cache / f"{doc_key(d)}{tail}"
        ref = None
        if not f.exists():
            diarizer = diarizer or load_diarizer(options, device="cpu")
            path = tmp / f"{d.name}.wav"
            ref = d.render(path, files)
            np.savez(f, **embed_document(diarizer, path))
            path.unlink()
        c = dict(np.load(f))
        if ref is None:
            ref = d.reference(files)
        projection = None
        if loso and d.group == "tune":
            left = tuple(sorted(set(loso[0]) - set(d.speakers)))
            if left not in projections:
                u = fit_projection({s: loso[0][s] for s in left}, loso[1])
                projections[left] = np.eye(u.shape[0]) - u.astype(np.float64) @ u.T.astype(np.float64)
            projection = projections[left]
        t = time.perf_counter()
        turns = cluster_cached(options, c, len(d.speakers) if known else None, projection)
        rows.append(doc_row(d, ref, turns, float(c["duration_s"]), time.perf_counter() - t))
        print(f"\r{i + 1}/{len(docs)} documents, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def run(docs: list[Document], diarizer, tmp: Path, known_count=None) -> list[dict]:
    cache: dict = {}
    rows = []
    t0 = time.perf_counter()
    for i, d in enumerate(docs):
        path = tmp / f"{d.name}.wav"
        ref = d.render(path, cache)
        t = time.perf_counter()
        out = (known_count(len(d.speakers)) if known_count else diarizer).diarize(path)
        dt = time.perf_counter() - t
        rows.append(doc_row(d, ref, out.turns, out.duration_s, dt))
        path.unlink()
        print(f"\r{i + 1}/{len(docs)} documents, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def summary(rows: list[dict]) -> list[str]:
    lines = []
    for group in ("tune", "held-out", "all"):
        sel = [r for r in rows if group == "all" or r["group"] == group]
        single = [r for r in sel if r["kind"] == "single"]
        if single:
            ok = sum(r["found"] == 1 for r in single)
            dist = dict(sorted(Counter(r["found"] for r in single).items()))
            lines.append(f"{group:8s} single-speaker: {ok}/{len(single)} = {100 * ok / len(single):.1f} % found as one speaker; "
                         f"found counts {dist}")
        for kind in ("conv2", "conv3"):
            conv = [r for r in sel if r["kind"] == kind]
            if not conv:
                continue
            pooled = {k: pooled_der(conv, k) for k in ("der", "confusion", "miss", "false_alarm")}
            ok = sum(r["found"] == r["true"] for r in conv)
            dist = dict(sorted(Counter(r["found"] for r in conv).items()))
            lines.append(f"{group:8s} {kind[-1]}-speaker conv: DER {100 * pooled['der']:.1f} % (confusion "
                         f"{100 * pooled['confusion']:.1f}, miss {100 * pooled['miss']:.1f}, false alarm "
                         f"{100 * pooled['false_alarm']:.1f}; mean per doc {100 * np.mean([r['der'] for r in conv]):.1f} %); "
                         f"count right {ok}/{len(conv)}; found counts {dist}")
    audio = sum(r["audio_s"] for r in rows)
    wall = sum(r["s"] for r in rows)
    lines.append(f"{len(rows)} documents, {audio / 60:.1f} min of audio, diarized in {wall:.0f} s ({audio / max(wall, 1e-9):.0f}x real time)")
    return lines


def pooled_der(conv: list[dict], part: str = "der") -> float:
    """DER (or one of its parts: confusion, miss, false_alarm) over several documents: their
    errors over their reference speech (not a mean of ratios)."""
    return sum(r[part] * r["total_s"] for r in conv) / max(sum(r["total_s"] for r in conv), 1e-9)


def draws_summary(by_seed: dict[int, list[dict]]) -> list[str]:
    """Several draws of documents (--seeds): each figure's mean ± sd over the draws and its range,
    then the held-out 2-speaker DER per speaker pair over all draws (where the errors sit)."""
    lines = [f"over {len(by_seed)} draws (seeds {', '.join(map(str, by_seed))}): mean ± sd over draws [min-max]"]

    def spread(v: list[float]) -> str:
        a = 100 * np.asarray(v)
        return f"{a.mean():.1f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.1f} % [{a.min():.1f}-{a.max():.1f}]"

    for group in ("tune", "held-out"):
        parts = []
        for kind in ("single", "conv2", "conv3"):
            per_draw = [[r for r in rows if r["group"] == group and r["kind"] == kind] for rows in by_seed.values()]
            if not all(per_draw):
                continue
            if kind == "single":
                parts.append(f"single found as one {spread([np.mean([r['found'] == 1 for r in d]) for d in per_draw])}")
            else:
                parts.append(f"DER {kind[-1]} speakers {spread([pooled_der(d) for d in per_draw])}, "
                             f"all draws pooled {100 * pooled_der([r for d in per_draw for r in d]):.1f} %")
        if parts:
            lines.append(f"{group:8s} " + "; ".join(parts))
    pairs: dict[tuple, list[dict]] = {}
    for rows in by_seed.values():
        for r in rows:
            if r["group"] == "held-out" and r["kind"] == "conv2":
                pairs.setdefault(tuple(r["speakers"]), []).append(r)
    lines.append("held-out 2-speaker DER by speaker pair, all draws: " + ", ".join(
        f"{'-'.join(k)} {100 * pooled_der(v):.1f} % (n {len(v)}, {sum(r['found'] == 1 for r in v)} as one)"
        for k, v in sorted(pairs.items())))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emodb", type=Path, default=None, help="EmoDB copy (a folder with wav/); default ../shared/data/emodb")
    ap.add_argument("--code", type=Path, default=ROOT, help="import hilbert_cli from this checkout (e.g. /tmp/base)")
    ap.add_argument("--n-single", type=int, default=40, help="single-speaker documents (half tune, half held-out speakers)")
    ap.add_argument("--n-conv", type=int, default=20, help="2-speaker conversations (and half as many 3-speaker ones)")
    ap.add_argument("--full", action="store_true", help="larger run: 200 single-speaker documents, 100 conversations")
    ap.add_argument("--tune-speakers", default=",".join(TUNE_SPEAKERS), help="speakers the defaults were tuned on")
    ap.add_argument("--diarization", default="vad-cluster")
    ap.add_argument("--clustering", default=None, help="vad-cluster clustering (tree | nap-kmeans); default: the code's own")
    ap.add_argument("--speaker-encoder", default=None, help="vad-cluster speaker encoder (campplus | resemblyzer); "
                    "default: the code's own")
    ap.add_argument("--embed-window", type=float, default=None, help="vad-cluster speaker-embedding window, s "
                    "(hop: half of it); default: the code's own (1.6 s, hop 0.8 s)")
    ap.add_argument("--embed-step", type=float, default=None, help="vad-cluster hop between speaker-embedding "
                    "windows, s (default: the encoder's)")
    ap.add_argument("--split", default=None, help="nap-kmeans: other cuts 'TWO,MORE' (cosine) than the encoder's shipped ones")
    ap.add_argument("--two-share", type=float, default=None, help="nap-kmeans: another minimum share of a second speaker")
    ap.add_argument("--known-count", action="store_true", help="give the diarizer each document's true speaker count")
    ap.add_argument("--fit-nap", type=Path, default=None, help="write the emotion directions (tuning speakers) here and stop")
    ap.add_argument("--cache", type=Path, default=None, help="compute each document's VAD regions and window embeddings "
                    "once into this folder and cluster them here (the diarizer's own functions); reruns take seconds")
    ap.add_argument("--loso", action="store_true", help="with --cache: cluster each tuning document with the emotion "
                    "directions fitted leaving its speakers out (nap-kmeans; honest figures for the tuning speakers)")
    ap.add_argument("--nap-k", type=int, default=None, help="with --loso: emotion directions fitted (default: as many as shipped)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, help="with --cache: several draws of documents 'A,B,...', each "
                    "summarised, then every figure's mean ± sd over the draws and the DER per held-out speaker pair")
    ap.add_argument("--json", type=Path, default=None, help="also write every document's figures here")
    args = ap.parse_args(argv)
    if args.full:
        args.n_single, args.n_conv = 200, 100
    emodb = args.emodb or default_emodb()
    if not (emodb / "wav").is_dir():
        print(f"{emodb}: no wav/ folder (EmoDB copy not found)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.code.resolve()))
    import hilbert_cli

    print(f"code: {Path(hilbert_cli.__file__).parent.parent}", file=sys.stderr)
    tune = tuple(args.tune_speakers.split(","))
    from hilbert_cli.prepare.options import PrepareOptions

    kw = {"diarization": args.diarization, "cpu_threads": args.threads, "clustering": args.clustering,
          "speaker_encoder": args.speaker_encoder}
    if args.embed_window:
        kw.update(embed_window_s=args.embed_window, embed_step_s=args.embed_window / 2)
    if args.embed_step:
        kw["embed_step_s"] = args.embed_step
    options = PrepareOptions(**{k: v for k, v in kw.items() if v is not None})
    if args.split or args.two_share is not None:  # other nap-kmeans cuts than the shipped ones, for this run
        import dataclasses

        from hilbert_cli.prepare.diarize import speaker_space

        enc = options.diarization.speaker_encoder
        sp = speaker_space.SPACES[enc]
        speaker_space.SPACES[enc] = dataclasses.replace(
            sp, split_distance=tuple(map(float, args.split.split(","))) if args.split else sp.split_distance,
            two_speaker_share=sp.two_speaker_share if args.two_share is None else args.two_share)
        print(f"nap-kmeans settings for {enc}: {speaker_space.SPACES[enc]}", file=sys.stderr)
    if args.fit_nap:
        fit_nap(emodb, tune, args.fit_nap, args.nap_k or 5, args.cache, options.diarization.speaker_encoder)
        return 0
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    if len(seeds) > 1 and not args.cache:
        print("--seeds needs --cache", file=sys.stderr)
        return 2
    if args.cache:
        from hilbert_cli.prepare.diarize.speaker_space import nap_path

        enc = options.diarization.speaker_encoder
        nap_file = nap_path(enc)
        loso = None
        if args.loso and (args.nap_k or nap_file):
            k = args.nap_k or int(np.load(nap_file).shape[1])
            loso = (utterance_embeddings(emodb, tune, args.cache, enc), k)
        by_seed: dict[int, list[dict]] = {}
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                rows = by_seed[seed] = run_cached(build(emodb, args.n_single, args.n_conv, tune, seed), options,
                                                  args.cache, Path(tmp), args.known_count, loso)
            print(f"diarization {args.diarization}, speaker encoder {enc}, clustering {options.diarization.clustering}"
                  f"{', true speaker count given' if args.known_count else ''}, code {args.code}, seed {seed}, "
                  f"cached embeddings{f', tuning documents with directions fitted leaving their speakers out (k={loso[1]})' if loso else ''}")
            for line in summary(rows)[:-1]:
                print(line)
        if len(seeds) > 1:
            for line in draws_summary(by_seed):
                print(line)
        if args.json:
            args.json.write_text(json.dumps(by_seed[seeds[0]] if len(seeds) == 1 else
                                            {str(k): v for k, v in by_seed.items()}, indent=1))
        return 0
    docs = build(emodb, args.n_single, args.n_conv, tune, seeds[0])
    diarizer = make_diarizer(args)
    known = None
    if args.known_count:
        by_n: dict[int, object] = {}

        def known(n: int):
            return by_n.setdefault(n, make_diarizer(args, n))
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(docs, diarizer, Path(tmp), known)
    print(f"diarization {args.diarization}, clustering {args.clustering or 'default'}"
          f"{', true speaker count given' if args.known_count else ''}, code {args.code}, seed {seeds[0]}")
    for line in summary(rows):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
