"""`clustering = "nap-kmeans"`: speakers from speaker embeddings with the emotion directions removed.

One voice in many moods must stay one speaker while two voices of one gender split. Three
steps, each measured with benchmarks/bench_diarization.py on EmoDB (settings chosen on its
five tuning speakers, figures reported on the five held-out ones; README "Diarization on real
speech"):

- **Nuisance attribute projection**: the few directions in which one voice moves with
  emotion are projected out. They are the top eigenvectors of the within-speaker covariance of
  utterance embeddings of the five EmoDB tuning speakers in all seven emotions, one file per
  speaker encoder (`campplus_emotion_nap.npy`, 192 x 2; `resemblyzer_emotion_nap.npy`, 256 x 12;
  made by `bench_diarization.py --speaker-encoder E --fit-nap FILE --nap-k K`; EmoDB is free for
  research use, and the files hold only these averaged directions). Resemblyzer needs 12: in its
  space one actor's emotions spread as far as two actors of one gender lie apart. CAM++ needs
  2: its clusters already follow speakers, not emotions.
- **Short groups of windows, k-means**: windows are averaged in groups of up to `Space.group`
  consecutive windows of one speech region (less noise than one 1.6 s window), and k-means
  on the projected groups assigns speakers.
- **A distance test for the count** (each encoder's `Space`): with the count free, k speakers
  are kept only while the closest two of the k-means centroids lie farther apart than the
  space's cut (cosine; one for a second speaker, one for a third or more) and every one of the
  k holds at least `min_share` of the windows (the vad-cluster option `min_speaker_share`, 0.1;
  `two_speaker_share` for a second speaker), so one emotional voice stays one speaker. The
  share rule is what keeps a short conversation of two people at two: on EmoDB man/woman
  turn-taking (12-15 window groups) Resemblyzer's k-means at k = 3 passed the distance test in 4
  of 6 pairs by splitting off one or two groups holding 4-8 % of the windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: the clustering settings of each speaker encoder's space (speaker_encoders.py)
@dataclass(frozen=True)
class Space:
    #: the shipped emotion directions (a file beside this module), or None: nothing projected out
    nap_file: str | None
    #: the closest two centroids must be farther apart than this (cosine) to keep k speakers:
    #: 2 speakers / 3 or more (chosen on the tuning speakers; bench_diarization.py --full --cache DIR --loso)
    split_distance: tuple[float, float]
    #: with the count free, a second speaker must hold at least this share of the windows (or
    #: min_share if larger)
    two_speaker_share: float
    #: consecutive windows of one speech region averaged into one point: ~3.2 s at the
    #: encoder's default hop (options.DEFAULT_STEP_S)
    group: int = 3


SPACES: dict[str, Space] = {
    # CAM++: 2 emotion directions; the cuts as chosen on the tuning speakers (directions fitted
    # leaving each document's speakers out): the 2-speaker cut where one-voice documents and
    # 2-speaker conversations are told apart equally often (97 % / 98 %), the 3-or-more cut with
    # the lowest 2- plus 3-speaker DER (0.26 / 0.28 / 0.30 / 0.32: 28.9 / 25.7 / 26.1 / 28.4 %)
    "campplus": Space("campplus_emotion_nap.npy", (0.207, 0.28), 0.15, group=2),
    # Resemblyzer: 12 directions; one EmoDB tuning voice (08) split off a mood holding 10-15 %,
    # hence the 15 % share
    "resemblyzer": Space("resemblyzer_emotion_nap.npy", (0.125, 0.20), 0.15),
}
# prepare/options.py's NAP_VERSIONS[encoder] (part of the config hash) is raised with any change to the
# shipped directions or the settings above, so cached outputs are redone

#: the count is never searched above this when no max_speakers is given
MAX_FREE_SPEAKERS = 8


def space(encoder: str) -> Space:
    if encoder not in SPACES:
        raise ValueError(f"nap-kmeans has no settings for the speaker encoder '{encoder}' (known: {', '.join(SPACES)})")
    return SPACES[encoder]


def nap_path(encoder: str) -> Path | None:
    """The shipped emotion directions of this encoder's space (a file beside this module), or None."""
    name = space(encoder).nap_file
    return None if name is None else Path(__file__).with_name(name)


@lru_cache(maxsize=4)
def emotion_projection(encoder: str = "resemblyzer") -> np.ndarray | None:
    """I - U U^T for the shipped emotion directions U (dim x k, orthonormal columns) of this
    encoder's space; None where nothing is projected out."""
    path = nap_path(encoder)
    if path is None:
        return None
    u = np.load(path, allow_pickle=False).astype(np.float64)
    return np.eye(u.shape[0]) - u @ u.T


def fit_projection(embeddings_by_speaker: dict[str, np.ndarray], k: int = 5) -> np.ndarray:
    """The top-k eigenvectors (dim x k) of the mean within-speaker covariance of L2-normalised
    utterance embeddings: the directions one voice moves in across its utterances."""
    covs = []
    for x in embeddings_by_speaker.values():
        x = np.asarray(x, dtype=np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        x = x - x.mean(0)
        covs.append(x.T @ x / len(x))
    ev, vec = np.linalg.eigh(np.mean(covs, axis=0))
    return vec[:, np.argsort(ev)[::-1][:k]].astype(np.float32)


def window_groups(windows: list[tuple[float, float, int]], size: int) -> np.ndarray:
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
    encoder: str = "resemblyzer",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    split_distance: tuple[float, float] | None = None,
    min_share: float = 0.1,
    seed: int = 0,
    projection: np.ndarray | None = None,
) -> np.ndarray:
    """Speaker index per window (see the module docstring), with the settings of `encoder`'s
    space. `projection`: another I - U U^T than the shipped one (the benchmark's directions
    fitted leaving a document's speakers out); `split_distance`: other cuts (the benchmark)."""
    sp = space(encoder)
    split_distance = split_distance or sp.split_distance
    gid = window_groups(windows, sp.group)
    n_groups = int(gid.max()) + 1 if gid.size else 0
    if n_groups == 0:
        return np.zeros(0, dtype=int)
    x = np.asarray(embs, dtype=np.float64)
    pts = np.stack([x[gid == g].mean(0) for g in range(n_groups)])
    pts /= np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-12)
    proj = emotion_projection(encoder) if projection is None else projection
    if proj is not None:
        pts = pts @ proj
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
        share = max(min_share, sp.two_speaker_share) if k == 2 else min_share
        if k > lo and (dmin <= split_distance[0 if k == 2 else 1] or smallest < share):
            break
        labels = cand
    return labels[gid]
