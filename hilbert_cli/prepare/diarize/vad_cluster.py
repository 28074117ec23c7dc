"""`vad-cluster`: Silero VAD + a speaker encoder (speaker_encoders.py: CAM++ by default, or
Resemblyzer) + clustering.

Works fully offline with the [offline] extra. Memory stays flat with recording length:
pass 1 streams the file through the VAD (one float per 32 ms frame is kept); pass 2 streams
the speech windows (`iter_spans`) through the speaker encoder (one vector per window);
clustering runs on those vectors, with k-means micro-clusters first when there are many, so
it never builds an n x n distance matrix for a long recording.

Clustering: `nap-kmeans` (the default; speaker_space.py: emotion directions projected out,
k-means, a centroid-distance test for the count, settings per speaker encoder) or `tree`
(below: what vad-cluster did before, tuned on Resemblyzer). The tree's count: one voice in many
moods spreads its Resemblyzer embeddings about as far apart as two voices do, so the
average-linkage tree is cut loosely (`cluster_threshold` 0.45), clusters under
`min_speaker_share` of the speech are folded into their neighbour, and two tight clusters are
still split when they lie `spread_ratio` times farther apart than their own spread. Measured on
EmoDB by benchmarks/bench_diarization.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...audio import SAMPLE_RATE, iter_spans
from ..options import DiarizationOptions, VadOptions
from .base import Diarization, merge_turns, relabel_by_first_appearance
from .speaker_encoders import load_speaker_encoder
from .vad import SileroVad, speech_regions

#: above this many windows, cluster k-means centroids instead of the windows themselves
MAX_DIRECT = 600
MIN_EMBED_S = 0.5
#: the relative test of `free_cut` never splits clusters closer than this (cosine distance)
MIN_SPLIT_DISTANCE = 0.2


def embedding_windows(regions: list[tuple[float, float]], window_s: float, step_s: float) -> list[tuple[float, float, int]]:
    """(start, end, region index) windows covering each speech region."""
    out = []
    for r, (s, e) in enumerate(regions):
        d = e - s
        if d < MIN_EMBED_S:
            continue
        if d <= window_s:
            out.append((s, e, r))
            continue
        n = int(np.ceil((d - window_s) / step_s)) + 1
        starts = s + np.arange(n) * step_s
        starts[-1] = min(starts[-1], e - window_s)
        for a in starts:
            out.append((float(a), float(a) + window_s, r))
    return out


def cluster(
    x: np.ndarray,
    *,
    threshold: float,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    min_share: float = 0.02,
    spread_ratio: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Cluster L2-normalised embeddings; returns an integer label per row.

    Average-linkage agglomerative clustering on cosine distance, cut at `threshold` unless a
    speaker count is given; min/max bounds re-cut the tree. Many rows are first reduced to at
    most MAX_DIRECT k-means centroids (memory O(n k), not O(n^2)). When the count is free,
    clusters holding under `min_share` of the rows are folded into the nearest one: in one
    emotional voice the tree's small side branches are moods (an angry or a whispered
    stretch), not people, and they lie as far from the main cluster as another speaker does,
    so only their share tells them apart (benchmarks/bench_diarization.py).
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans

    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    if n > MAX_DIRECT:
        km = KMeans(n_clusters=MAX_DIRECT, n_init=1, max_iter=50, random_state=seed).fit(x)
        points, assign = km.cluster_centers_, km.labels_
        weights = np.bincount(assign, minlength=MAX_DIRECT)
    else:
        points, assign, weights = x, np.arange(n), np.ones(n, dtype=int)
    m = points.shape[0]

    def cut(k: int | None) -> np.ndarray:
        if m == 1:
            return np.zeros(1, dtype=int)
        if k is not None:
            k = max(1, min(k, m))
            if k == 1:
                return np.zeros(m, dtype=int)
            return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(points)
        return free_cut(points, threshold, spread_ratio)

    if num_speakers:
        labels = cut(num_speakers)
    else:
        labels = cut(None)
        k = len(set(labels.tolist()))
        if max_speakers and k > max_speakers:
            labels = cut(max_speakers)
        elif min_speakers and k < min_speakers:
            labels = cut(min_speakers)
        else:
            labels = _fold_small(points, labels, weights, min_share=min_share, min_k=min_speakers or 1)
    return labels[assign]


def free_cut(points: np.ndarray, threshold: float, spread_ratio: float | None = None) -> np.ndarray:
    """Cut scikit-learn's average-linkage tree (cosine) from the top: a merge separates two
    speakers when its distance exceeds `threshold`, or (with `spread_ratio`) exceeds
    `spread_ratio` times the mean distance inside its two sides and MIN_SPLIT_DISTANCE.

    The absolute cut must be loose enough for one voice in many moods (EmoDB: within-voice
    distances ~0.3); the relative test still splits two steady voices that lie closer than
    that, as long as each is tight (synthetic or read speech)."""
    from sklearn.cluster import AgglomerativeClustering

    m = points.shape[0]
    tree = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=0.0,
                                   compute_full_tree=True).fit(points)
    members: list[np.ndarray] = [np.array([i]) for i in range(m)]
    for a, b in tree.children_:
        members.append(np.concatenate([members[a], members[b]]))
    dist = None
    if spread_ratio:
        from scipy.spatial.distance import pdist, squareform

        dist = squareform(pdist(points, metric="cosine"))

    def spread(node: int) -> tuple[float, int]:
        idx = members[node]
        if idx.size < 2:
            return 0.0, 0
        return float(dist[np.ix_(idx, idx)].sum() / (idx.size * (idx.size - 1))), int(idx.size)

    def separates(j: int) -> bool:
        d = float(tree.distances_[j])
        if d > threshold:
            return True
        if dist is None or d <= MIN_SPLIT_DISTANCE:
            return False
        (sa, na), (sb, nb) = spread(int(tree.children_[j][0])), spread(int(tree.children_[j][1]))
        if na + nb == 0:
            return False
        return d > spread_ratio * (sa * na + sb * nb) / (na + nb)

    labels = np.zeros(m, dtype=int)
    stack, k = [len(members) - 1], 0
    while stack:
        node = stack.pop()
        j = node - m
        if j >= 0 and separates(j):
            stack.extend(int(c) for c in tree.children_[j])
        else:
            labels[members[node]] = k
            k += 1
    return labels


def _fold_small(points: np.ndarray, labels: np.ndarray, weights: np.ndarray, *, min_share: float, min_k: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) <= max(1, min_k):
            return labels
        mass = np.array([weights[labels == i].sum() for i in ids], dtype=float)
        small = int(np.argmin(mass))
        if mass[small] >= min_share * weights.sum():
            return labels
        cents = np.stack([points[labels == i].mean(0) for i in ids])
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-8)
        sims = cents @ cents[small]
        sims[small] = -np.inf
        labels[labels == ids[small]] = ids[int(np.argmax(sims))]


def turns_from_windows(
    regions: list[tuple[float, float]], windows: list[tuple[float, float, int]], labels: list[str]
) -> list[tuple[float, float, str]]:
    """Speaker turns: each region split at the midpoints between its windows' centres;
    regions too short to embed take the label of the nearest window in time."""
    by_region: dict[int, list[tuple[float, str]]] = {}
    for (s, e, r), lab in zip(windows, labels):
        by_region.setdefault(r, []).append(((s + e) / 2, lab))
    centres = np.array([(s + e) / 2 for s, e, _ in windows]) if windows else np.zeros(0)
    turns = []
    for r, (s, e) in enumerate(regions):
        items = by_region.get(r)
        if not items:
            if centres.size == 0:
                continue
            mid = (s + e) / 2
            j = int(np.argmin(np.abs(centres - mid)))
            turns.append((s, e, labels[j]))
            continue
        items.sort()
        bounds = [s] + [(items[i][0] + items[i + 1][0]) / 2 for i in range(len(items) - 1)] + [e]
        for i, (_, lab) in enumerate(items):
            turns.append((bounds[i], bounds[i + 1], lab))
    return merge_turns(turns, 0.0)


class VadClusterDiarizer:
    name = "vad-cluster"

    def __init__(self, options: DiarizationOptions, vad: VadOptions | None = None, *, device: str = "cpu",
                 cpu_threads: int = 0, chunk_s: float = 30.0) -> None:
        self.options = options
        self.vad_options = vad or VadOptions()
        self.chunk_s = chunk_s
        self.vad = SileroVad()
        self.encoder = None
        if options.backend == "vad-cluster" and not options.one_speaker:
            self.encoder = load_speaker_encoder(options.speaker_encoder, device=device, threads=cpu_threads)

    def provenance(self) -> dict:
        p = {"backend": self.options.backend, "vad": self.vad.provenance()}
        if self.encoder is not None:
            p["speaker_encoder"] = self.encoder.provenance()
        else:
            p["speakers"] = "one: voice activity only"
        return p

    def close(self) -> None:
        self.encoder = None

    def diarize(self, path: str | Path) -> Diarization:
        o = self.options
        probs, n_samples = self.vad.file_probabilities(path, self.chunk_s)
        regions = speech_regions(probs, n_samples, **self.vad_options.regions_kwargs())
        duration = n_samples / SAMPLE_RATE
        info = {"n_speech_regions": len(regions), "speech_s": round(sum(e - s for s, e in regions), 3)}
        if self.encoder is None or not regions:
            turns = [(s, e, "SPEAKER_00") for s, e in regions]
            return Diarization(turns, regions, duration, info, vad_probs=probs)
        windows = embedding_windows(regions, o.embed_window_s, o.step_s)
        embs = np.zeros((len(windows), self.encoder.dim), dtype=np.float32)
        batch_idx: list[int] = []
        batch: list[np.ndarray] = []
        for i, clip in iter_spans(path, [(s, e) for s, e, _ in windows], chunk_s=self.chunk_s):
            batch_idx.append(i)
            batch.append(clip)
            if len(batch) >= 64:
                embs[batch_idx] = self.encoder.embed(batch)
                batch_idx, batch = [], []
        if batch:
            embs[batch_idx] = self.encoder.embed(batch)
        if o.clustering == "nap-kmeans":
            from .speaker_space import nap_kmeans

            ids = nap_kmeans(embs, windows, encoder=o.speaker_encoder, num_speakers=o.num_speakers, min_speakers=o.min_speakers,
                             max_speakers=o.max_speakers, min_share=o.min_speaker_share)
        else:
            ids = cluster(
                embs, threshold=o.cluster_threshold, num_speakers=o.num_speakers,
                min_speakers=o.min_speakers, max_speakers=o.max_speakers, min_share=o.min_speaker_share,
                spread_ratio=o.spread_ratio,
            )
        labels = relabel_by_first_appearance(ids)
        turns = turns_from_windows(regions, windows, labels)
        info.update(n_windows=len(windows), n_speakers=len(set(labels)))
        return Diarization(turns, regions, duration, info, vad_probs=probs)
