"""`clustering = "nap-kmeans"`: speakers from Resemblyzer embeddings with the emotion directions removed.

In Resemblyzer's space one actor's emotions spread as far as two actors of one gender lie
apart (EmoDB), so no cut of the raw distances separates speakers from moods. Two changes,
each measured with benchmarks/bench_diarization.py (settings chosen on its tuning speakers,
figures reported on the held-out ones):

- **Nuisance attribute projection**: the few directions in which one voice moves with
  emotion are projected out. They are the top eigenvectors of the within-speaker covariance of
  utterance embeddings of the five EmoDB tuning speakers in all seven emotions
  (`resemblyzer_emotion_nap.npy`, 256 x 12 float32, made by `bench_diarization.py --fit-nap
  --nap-k 12`; EmoDB is free for research use, and the file holds only these averaged directions).
  12 directions rather than 5: on the tuning speakers (directions fitted leaving each document's
  speakers out, 100 one-speaker documents, 50 conversations) one voice's moods lie closer after
  the projection while two voices stay apart (the k = 2 centroid distance separates them with
  AUC 0.96 against 0.95 with 5).
- **Short groups of windows, k-means, a distance test for the count**: windows are averaged in
  groups of up to GROUP consecutive windows of one speech region (less noise than one
  1.6 s window), and k-means on the projected groups assigns speakers. With the count free,
  k speakers are kept only while the closest two of the k-means centroids lie farther apart
  than SPLIT_DISTANCE (cosine) and every one of the k holds at least `min_share` of the
  windows (the vad-cluster option `min_speaker_share`, 0.1; TWO_SPEAKER_SHARE for a second
  speaker), so one emotional voice stays one speaker. The share rule is what keeps a short
  conversation of two people at two: on EmoDB man/woman turn-taking (12-15 window groups)
  k-means at k = 3 passed the distance test in 4 of 6 pairs by splitting off one or two groups
  holding 4-8 % of the windows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

NAP_FILE = Path(__file__).with_name("resemblyzer_emotion_nap.npy")
#: consecutive windows of one speech region averaged into one point (1.6 s windows, 0.8 s hop: ~3.2 s)
GROUP = 3
#: the closest two centroids must be farther apart than this (cosine) to keep k speakers:
#: 2 speakers / 3 or more (chosen on the tuning speakers, directions fitted leaving each
#: document's speakers out; bench_diarization.py --full --cache DIR --loso)
SPLIT_DISTANCE = (0.125, 0.20)
#: with the count free, a second speaker must hold at least this share of the windows (or
#: min_share if larger): one EmoDB tuning voice (08) split off a mood holding 10-15 %
TWO_SPEAKER_SHARE = 0.15
# prepare/options.py's NAP_VERSION (part of the config hash) is raised with any change to the
# shipped directions or the constants above, so cached outputs are redone

#: the count is never searched above this when no max_speakers is given
MAX_FREE_SPEAKERS = 8


@lru_cache(maxsize=1)
def emotion_projection() -> np.ndarray:
    """I - U U^T for the shipped emotion directions U (256 x k, orthonormal columns)."""
    u = np.load(NAP_FILE, allow_pickle=False).astype(np.float64)
    return np.eye(u.shape[0]) - u @ u.T


def fit_projection(embeddings_by_speaker: dict[str, np.ndarray], k: int = 5) -> np.ndarray:
    """The top-k eigenvectors (256 x k) of the mean within-speaker covariance of L2-normalised
    utterance embeddings: the directions one voice moves in across its utterances."""
    covs = []
    for x in embeddings_by_speaker.values():
        x = np.asarray(x, dtype=np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        x = x - x.mean(0)
        covs.append(x.T @ x / len(x))
    ev, vec = np.linalg.eigh(np.mean(covs, axis=0))
    return vec[:, np.argsort(ev)[::-1][:k]].astype(np.float32)


def window_groups(windows: list[tuple[float, float, int]], size: int = GROUP) -> np.ndarray:
    """Group index per window: runs of up to `size` consecutive windows of one speech region."""
    gid = np.zeros(len(windows), dtype=int)
    g, last, n_in = -1, None, 0
    for i, (_, _, region) in enumerate(windows):
        if region != last or n_in >= size:
            g, last, n_in = g + 1, region, 0
        gid[i] = g
        n_in += 1
    return gid


def _kmeans(points: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    """(labels, cosine distance of the closest two centroids)."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points)
    c = km.cluster_centers_ / np.maximum(np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12)
    sims = c @ c.T
    return km.labels_, float(1.0 - sims[np.triu_indices(k, 1)].max())


def nap_kmeans(
    embs: np.ndarray,
    windows: list[tuple[float, float, int]],
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    split_distance: tuple[float, float] = SPLIT_DISTANCE,
    min_share: float = 0.1,
    seed: int = 0,
    projection: np.ndarray | None = None,
) -> np.ndarray:
    """Speaker index per window (see the module docstring). `projection`: another I - U U^T than
    the shipped one (the benchmark's directions fitted leaving a document's speakers out)."""
    gid = window_groups(windows)
    n_groups = int(gid.max()) + 1 if gid.size else 0
    if n_groups == 0:
        return np.zeros(0, dtype=int)
    x = np.asarray(embs, dtype=np.float64)
    pts = np.stack([x[gid == g].mean(0) for g in range(n_groups)])
    pts /= np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-12)
    pts = pts @ (emotion_projection() if projection is None else projection)
    pts /= np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-12)
    labels = np.zeros(n_groups, dtype=int)
    if num_speakers:
        if num_speakers > 1 and n_groups > num_speakers:
            labels = _kmeans(pts, num_speakers, seed)[0]
        elif num_speakers > 1:  # no more groups than speakers asked for: one speaker each
            labels = np.arange(n_groups)
        return labels[gid]
    lo = max(1, min_speakers or 1)
    # k-means on every group is no test of a split, but a minimum asked for is still honoured
    hi = min(max_speakers or MAX_FREE_SPEAKERS, max(n_groups - 1, min(lo, n_groups)))
    for k in range(2, hi + 1):
        cand, dmin = _kmeans(pts, k, seed)
        smallest = np.bincount(cand[gid], minlength=k).min() / len(gid)
        share = max(min_share, TWO_SPEAKER_SHARE) if k == 2 else min_share
        if k > lo and (dmin <= split_distance[0 if k == 2 else 1] or smallest < share):
            break
        labels = cand
    return labels[gid]
