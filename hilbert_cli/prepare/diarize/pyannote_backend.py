"""`pyannote`: a pyannote.audio SpeakerDiarization pipeline, on bounded windows.

The pipeline comes from a registry alias, a hub id (token from HF_TOKEN; never when offline)
or a local directory with config.yaml. It is handed waveform tensors, never paths (no
torchcodec/FFmpeg needed, and faster). A long recording is diarized window by window
(`diarization_window_s`, streamed with iter_spans), so memory stays flat; each window's
speakers are linked to the recording's speakers by the cosine similarity of their centroid
embeddings (Hungarian matching, `link_threshold`), with running-mean centroids.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...audio import SAMPLE_RATE, iter_spans, stream_chunks
from ...errors import ConfigError, ModelUnavailable
from ..options import DiarizationOptions
from .base import Diarization, merge_turns, torch_threads, union

DEFAULT_PIPELINE = "pyannote-community-1"


def pipeline_source(name: str) -> tuple[Path | str, dict]:
    """(where the pipeline is, its provenance): a local directory, a registry alias, or a hub id
    pyannote may fetch (`source` "hub"; only when online). Nothing is imported or loaded, so
    prepare's model check (prepare/stage.py) and the loader find a pipeline the same way."""
    from ...registry import is_offline, resolve

    p = Path(name).expanduser()
    if p.exists():
        return p, {"alias": str(name), "repo": None, "revision": None, "source": "path", "arch": "pyannote"}
    try:
        r = resolve(name, kind="diarization")
        return r.path, r.provenance()
    except ModelUnavailable:
        if "/" not in name or is_offline():
            raise
        return name, {"alias": name, "repo": name, "revision": None, "source": "hub", "arch": "pyannote"}


def _load_pipeline(name: str):
    src, prov = pipeline_source(name)
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    try:
        from pyannote.audio import Pipeline
    except ImportError as exc:  # pragma: no cover
        raise ModelUnavailable("pyannote.audio is not installed (pip install pyannote.audio)") from exc
    try:
        pipe = Pipeline.from_pretrained(str(src), token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:
        raise ConfigError(f"pyannote pipeline '{name}' cannot be loaded: {' '.join(str(exc).split())[:300]}") from exc
    if pipe is None:
        raise ModelUnavailable(f"pyannote pipeline '{name}' is not available (gated: set HF_TOKEN and accept the conditions)")
    return pipe, prov


def _unpack(output):
    """pyannote 4 DiarizeOutput / pyannote 3 (Annotation, embeddings) / Annotation."""
    if hasattr(output, "speaker_diarization"):
        return output.speaker_diarization, getattr(output, "speaker_embeddings", None)
    if isinstance(output, tuple):
        return output[0], (output[1] if len(output) > 1 else None)
    return output, None


class PyannoteDiarizer:
    name = "pyannote"

    def __init__(self, options: DiarizationOptions, *, device: str = "cpu", cpu_threads: int = 0,
                 chunk_s: float = 30.0) -> None:
        import torch

        self.options = options
        self.cpu_threads, self.chunk_s = cpu_threads, chunk_s
        self.pipeline, self._prov = _load_pipeline(options.model or DEFAULT_PIPELINE)
        self.device = device
        try:
            self.pipeline.to(torch.device(device))
        except Exception:  # pragma: no cover - CPU-only pipelines
            pass

    def provenance(self) -> dict:
        return {"backend": "pyannote", "pipeline": self._prov}

    def close(self) -> None:
        self.pipeline = None

    def _run(self, samples: np.ndarray):
        import torch

        o = self.options
        kw = {}
        if o.num_speakers:
            kw["max_speakers"] = o.num_speakers  # a window may hold fewer speakers than the recording
        if o.min_speakers:
            kw["min_speakers"] = 1
        if o.max_speakers:
            kw["max_speakers"] = o.max_speakers
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
        with torch.inference_mode(), torch_threads(self.cpu_threads):
            return _unpack(self.pipeline({"waveform": wav, "sample_rate": SAMPLE_RATE}, **kw))

    def diarize(self, path: str | Path) -> Diarization:
        o = self.options
        total = sum(c.samples.size for c in stream_chunks(path, self.chunk_s))
        duration = total / SAMPLE_RATE
        win = o.window_s
        n_win = max(1, int(np.ceil(duration / win)))
        spans = [(k * win, min(duration, (k + 1) * win)) for k in range(n_win)]
        centroids: list[np.ndarray | None] = []
        counts: list[float] = []
        turns: list[tuple[float, float, str]] = []
        for k, samples in iter_spans(path, spans, chunk_s=self.chunk_s):
            if samples.size < SAMPLE_RATE // 2:
                continue
            offset = spans[k][0]
            annotation, emb = self._run(samples)
            labels = list(annotation.labels())
            local: dict[str, list[tuple[float, float]]] = {lab: [] for lab in labels}
            for seg, _, lab in annotation.itertracks(yield_label=True):
                local[lab].append((offset + seg.start, offset + seg.end))
            mapping = self._link(labels, emb, centroids, counts, local)
            for lab, segs in local.items():
                turns.extend((s, e, mapping[lab]) for s, e in segs)
        turns = merge_turns(turns, 0.0)
        speech = union([(s, e) for s, e, _ in turns])
        return Diarization(turns, speech, duration, {"n_windows": n_win, "n_speakers": len({t[2] for t in turns})})

    def _link(self, labels, emb, centroids, counts, local) -> dict[str, str]:
        """Map this window's labels to recording-level labels (SPEAKER_00, ...)."""
        from scipy.optimize import linear_sum_assignment

        o = self.options
        cap = o.num_speakers or o.max_speakers
        vecs = []
        for i, lab in enumerate(labels):
            v = None
            if emb is not None and i < len(emb):
                v = np.asarray(emb[i], dtype=np.float64)
                n = np.linalg.norm(v)
                v = v / n if np.isfinite(v).all() and n > 0 else None
            vecs.append(v)
        mapping: dict[str, str] = {}
        known = [i for i, c in enumerate(centroids) if c is not None]
        have = [i for i, v in enumerate(vecs) if v is not None]
        if known and have:
            sim = np.array([[float(vecs[a] @ centroids[b]) for b in known] for a in have])
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                full = cap is not None and len(centroids) >= cap
                if 1.0 - sim[r, c] <= o.link_threshold or full:
                    a, b = have[r], known[c]
                    mapping[labels[a]] = f"SPEAKER_{b:02d}"
                    w = sum(e - s for s, e in local[labels[a]])
                    m = centroids[b] * counts[b] + vecs[a] * w
                    counts[b] += w
                    centroids[b] = m / max(np.linalg.norm(m), 1e-12)
        for i, lab in enumerate(labels):
            if lab in mapping:
                continue
            if cap is not None and len(centroids) >= cap and vecs[i] is not None and known:
                b = max(known, key=lambda j: float(vecs[i] @ centroids[j]))
                mapping[lab] = f"SPEAKER_{b:02d}"
                continue
            centroids.append(vecs[i])
            counts.append(sum(e - s for s, e in local[lab]))
            mapping[lab] = f"SPEAKER_{len(centroids) - 1:02d}"
        return mapping
