"""Trained models on disk: safetensors weights + a JSON config. Never pickle.

Layout of a run directory (what `hilbert train` writes and `hilbert score --model` reads):

    runs/NAME/models/<task>/model.safetensors   weights "model.*" + preprocessing "prep.*"
    runs/NAME/models/<task>/config.json         format version, tool version, task, variant,
                                                class names / label map, model/loss/train
                                                configs, backbone aliases + dims, features
                                                metadata, the recipe, CV summary, sha256

load_model_dir accepts the run directory, its models/ directory or one task directory.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..contracts.embed import FeaturesMeta
from ..contracts.model_dir import CONFIG, FORMAT, WEIGHTS, ModelDirConfig
from ..contracts.model_dir import MODEL_FORMAT_VERSION as FORMAT_VERSION
from ..errors import ConfigError

__all__ = ["FORMAT", "FORMAT_VERSION", "save_task_model", "load_model_dir", "TrainedBundle", "TaskPrediction",
           "TaskModel", "save_model_dir"]


def _atomic_bytes(path: Path, write) -> None:
    """Weights and config appear whole or not at all (the one atomic writer of parquet_io)."""
    from ..parquet_io import atomic_write

    atomic_write(path, write)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_task_model(fitted, out_dir: str | Path, *, task: str, run_name: str, d_audio: int, d_text: int,
                    features_metadata: dict, recipe: Optional[dict] = None, train_config=None,
                    max_segments: Optional[int] = None, cv_summary: Optional[dict] = None,
                    n_train: Optional[int] = None, calibration: Optional[dict] = None) -> Path:
    """Write one task's FittedModel as model.safetensors + config.json (atomic) -> the directory.
    calibration: the task's map from training.calibration (in config.json, so it is part of the model id)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    sd = {f"model.{k}": v.detach().cpu().contiguous() for k, v in fitted.model.state_dict().items()}
    sd.update({k: v.cpu() for k, v in fitted.prep.state_dict().items()})
    # One header key: safetensors writes its metadata map in a random order per save, so two keys
    # made the same weights hash differently (and so the model_id, and score's cached parts).
    header = {"hilbert": json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION}, sort_keys=True)}
    _atomic_bytes(out / WEIGHTS, lambda tmp: save_file(sd, tmp, metadata=header))
    sha = _sha256(out / WEIGHTS)
    cfg = ModelDirConfig(
        model_id=f"{run_name}/{task}@{sha[:12]}",
        run_name=run_name,
        task=task,
        variant=fitted.model_config.variant,
        class_names=list(fitted.class_names),
        label_map={c: i for i, c in enumerate(fitted.class_names)},
        d_audio=d_audio,
        d_text=d_text,
        backbones=FeaturesMeta.from_metadata(features_metadata, source="features metadata").backbones(d_audio, d_text),
        max_segments=max_segments,
        model_config=fitted.model_config.model_dump(mode="json"),
        loss_config=fitted.loss_config.model_dump(mode="json"),
        train_config=train_config.model_dump(mode="json") if train_config is not None else None,
        epochs=fitted.epochs_run,
        n_train=n_train,
        cv=cv_summary,
        features_metadata=features_metadata or {},
        recipe=recipe,
        calibration=calibration,
        weights_sha256=sha,
    ).to_metadata()
    text = json.dumps(cfg, indent=2, sort_keys=False, default=str)
    _atomic_bytes(out / CONFIG, lambda tmp: Path(tmp).write_text(text))
    return out


save_model_dir = save_task_model


@dataclass
class TaskPrediction:
    """One task's prediction for one recording. embeddings: z_a z_t z_j h_a h_t h_j (float32 [k])."""

    task: str
    class_names: list[str]
    probs: np.ndarray
    label: str
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    #: the model's own probabilities when `probs` are calibrated (None: the model has no calibration)
    raw_probs: Optional[np.ndarray] = None
    #: the attention-pooling weights over the positions the model saw: attn_a, attn_t [L] and
    #: attn_j [2L] (audio-query positions, then text-query positions); empty for the transfer
    #: variants (mean pooling: no attention); with a segment vote (ModelConfig.segment_vote) also
    #: vote: each voting position's share of the predicted class's vote (sums to 1; vote_shares)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    #: segment_index of each position the model saw (all, or max_segments evenly subsampled;
    #: empty when the recording had no segment and was scored from one all-mean segment)
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class TaskModel:
    task: str
    config: dict
    model: object
    prep: object
    class_names: list[str]
    path: Path
    #: sha256 of the verified weights and the config (model_digest): what identifies this model
    digest: str = ""

    @property
    def model_id(self) -> str:
        return f"{self.config.get('run_name', self.path.name)}/{self.task}@{self.digest[:12]}"


def model_digest(cfg: dict, weights_sha256: str) -> str:
    """sha256 of the weights' hash and the canonical config: changed weights or config are another
    model, so a shared work directory never reuses another model's cached score parts."""
    body = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{weights_sha256}\n{body}".encode()).hexdigest()


def _verify_weights(cfg_path: Path, w_path: Path, cfg: dict) -> str:
    """The weights file's sha256, which must be config.json's weights_sha256 (a corrupt, truncated
    or swapped file never loads)."""
    expected = cfg.get("weights_sha256")
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ConfigError(f"{cfg_path}: weights_sha256 = {expected!r}: expected the sha256 of {WEIGHTS} (64 hex digits)")
    actual = _sha256(w_path)
    if actual != expected:
        raise ConfigError(f"{w_path}: corrupt weights: the weights do not match config.json weights_sha256 "
                          f"(file {actual[:16]}..., config {expected[:16]}...); copy the model directory again")
    return actual


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_config(cfg_path: Path, cfg: dict) -> None:
    """The keys scoring relies on, checked once at load (not per recording): one line naming the key."""
    from ..contracts.scores import prob_column

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{cfg_path}: {key} = {cfg.get(key)!r}: {problem}")

    if not isinstance(cfg.get("task"), str) or not cfg["task"].strip():
        raise bad("task", "expected a task name")
    if not isinstance(cfg.get("run_name", ""), str):
        raise bad("run_name", "expected a string")
    names = cfg.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(c, str) and c.strip() for c in names):
        raise bad("class_names", "expected a list of class names")
    seen: dict[str, str] = {}  # prob_<class> column -> class name
    for c in names:
        col = prob_column(c)
        if col in seen:
            raise bad("class_names", f"'{seen[col]}' and '{c}' are the same class (column {col}): "
                                     "class names must be unique")
        seen[col] = c
    ms = cfg.get("max_segments")
    if ms is not None and not (_is_int(ms) and ms >= 1):
        raise bad("max_segments", "expected a whole number >= 1, or null")
    for key in ("d_audio", "d_text"):
        if not (_is_int(cfg.get(key)) and cfg[key] >= 1):
            raise bad(key, "expected the feature width (a whole number >= 1)")
    if not isinstance(cfg.get("features_metadata") or {}, dict):
        raise bad("features_metadata", "expected an object")


def _typed_config(cfg_path: Path, cfg: dict) -> ModelDirConfig:
    """config.json as ModelDirConfig (its features metadata typed too): one line naming the key."""
    from pydantic import ValidationError

    from ..contracts.base import validation_line

    try:
        typed = ModelDirConfig.from_metadata(cfg)
    except ValidationError as exc:
        raise ConfigError(f"{cfg_path}: {validation_line(exc)}") from None
    FeaturesMeta.from_metadata(typed.features_metadata, source=cfg_path, error=ConfigError, prefix="features_metadata")
    return typed


def _check_calibration(cfg_path: Path, cfg: dict) -> None:
    """A stored calibration map is data: a known method with finite parameters for the model's classes."""
    if cfg.get("calibration") is None:
        return
    from .calibration import from_json

    try:
        from_json(cfg["calibration"], f"{cfg_path}: calibration", len(cfg["class_names"]))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_dims(cfg_path: Path, cfg: dict, prep) -> None:
    """d_audio / d_text must be the widths the weights were fitted on (and the recorded encoders')."""
    fm = ModelDirConfig.from_metadata(cfg).features
    for key, side in (("d_audio", "audio"), ("d_text", "text")):
        fitted = int(prep.tensors[f"{side}_mean"].shape[0])
        if cfg[key] != fitted:
            raise ConfigError(f"{cfg_path}: {key} = {cfg[key]!r} does not match the weights "
                              f"({side} features of width {fitted})")
        enc = fm.audio_model if side == "audio" else fm.text_model
        dim = enc.dim if enc is not None else None
        if dim is not None and dim != fitted:
            raise ConfigError(f"{cfg_path}: features_metadata.{side}_model.dim = {dim!r} does not match the weights "
                              f"({side} features of width {fitted})")


def _load_task_dir(d: Path, device: str) -> TaskModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..nn import ModelConfig, create_model
    from .preprocess import Preprocessor

    cfg_path, w_path = d / CONFIG, d / WEIGHTS
    if not cfg_path.is_file():
        raise ConfigError(f"{d}: not a trained model (no {CONFIG})")
    if not w_path.is_file():
        raise ConfigError(f"{d}: trained model is missing {WEIGHTS}")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{cfg_path}: corrupt model config ({' '.join(str(exc).split())})") from exc
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise ConfigError(f"{cfg_path}: not a hilbert model config (format is {cfg.get('format') if isinstance(cfg, dict) else None!r})")
    ver = cfg.get("format_version")
    if not isinstance(ver, int) or ver > FORMAT_VERSION or ver < 1:
        raise ConfigError(f"{cfg_path}: model format version {ver!r} is not supported by hilbert {__version__} "
                          f"(supports 1..{FORMAT_VERSION}; written by hilbert {cfg.get('tool_version')})")
    weights_sha = _verify_weights(cfg_path, w_path, cfg)
    _check_config(cfg_path, cfg)
    _typed_config(cfg_path, cfg)
    try:
        mc = ModelConfig.model_validate(cfg.get("model_config"))
    except ValueError as exc:
        from ..scoring.stages import validation_error

        raise validation_error(str(cfg_path), "model_config", exc) from None
    try:
        sd = load_file(str(w_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{w_path}: corrupt weights ({' '.join(str(exc).split())})") from exc
    try:
        prep = Preprocessor.from_state_dict(sd)
        _check_dims(cfg_path, cfg, prep)
        model = create_model(mc, prep.d_audio, prep.d_text, len(cfg["class_names"]), prep.d_doc)
        weights = {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}
        model.load_state_dict(_drop_legacy_keys(weights), strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"{d}: weights do not match the model config ({' '.join(str(exc).split())[:300]})") from exc
    _check_calibration(cfg_path, cfg)
    model.to(device).eval()
    return TaskModel(task=cfg["task"], config=cfg, model=model, prep=prep, class_names=list(cfg["class_names"]), path=d,
                     digest=model_digest(cfg, weights_sha))


# Models saved before 2026-11-23 gave the attention pools' score layer a bias: a constant added to every
# position's score, which the softmax over positions ignores: dropped, so those models still load.
_LEGACY_KEYS = re.compile(r"^pool_[atj]\.score\.2\.bias$")


def _drop_legacy_keys(weights: dict) -> dict:
    return {k: v for k, v in weights.items() if not _LEGACY_KEYS.match(k)}


class TrainedBundle:
    """Every task model of a run. predict() scores one recording's segment sequence."""

    def __init__(self, path: Path, models: dict[str, TaskModel], device: str = "cpu"):
        self.path = path
        self.models = models
        self.device = device
        first = next(iter(models.values()))
        cfg = ModelDirConfig.from_metadata(first.config)
        self.tool_version: str = cfg.tool_version if "tool_version" in first.config else ""
        self.features_metadata: dict = cfg.features_metadata
        self.backbones: dict = cfg.backbones
        self.run_name: str = cfg.run_name if cfg.run_name is not None else path.name
        digest = hashlib.sha256("".join(m.digest for m in models.values()).encode())
        self.model_id: str = f"{self.run_name}@{digest.hexdigest()[:12]}"

    @property
    def config_path(self) -> Path:
        """The config.json whose features metadata (and so whose named models) scoring uses."""
        return next(iter(self.models.values())).path / CONFIG

    @property
    def tasks(self) -> list[str]:
        return list(self.models)

    @property
    def d_audio(self) -> int:
        return int(next(iter(self.models.values())).config["d_audio"])

    @property
    def d_text(self) -> int:
        return int(next(iter(self.models.values())).config["d_text"])

    @property
    def needs_doc_stats(self) -> bool:
        """True when a task model takes document statistics (predict needs doc_stats=)."""
        return any(m.prep.d_doc for m in self.models.values())

    def predict(self, audio_emb: np.ndarray, text_emb: np.ndarray, tasks: Optional[list[str]] = None,
                doc_stats=None) -> list[TaskPrediction]:
        """One recording: audio_emb [n, d_a], text_emb [n, d_t] (segment order) -> one TaskPrediction
        per task. More than the model's max_segments are evenly subsampled, as in training; a
        recording with no segment is scored from one all-mean segment (an uninformed prediction).
        doc_stats: the recording's embed.doc_stats.DocStats, for models trained with them.
        Each prediction carries the pooling weights (attention) and the segment_index of each
        position they weigh (positions), so evidence names the true segments of a subsampled one."""
        import torch

        from ..embed.doc_stats import feature_vector
        from ..nn.vote import vote_shares

        from .data import subsample_positions

        a = np.asarray(audio_emb, np.float32)
        t = np.asarray(text_emb, np.float32)
        if a.ndim != 2 or t.ndim != 2 or a.shape[0] != t.shape[0]:
            raise ValueError(f"predict: expected audio [n, {self.d_audio}] and text [n, {self.d_text}], "
                             f"got {a.shape} and {t.shape}")
        if a.shape[1] != self.d_audio or t.shape[1] != self.d_text:
            raise ValueError(f"predict: the model expects d_audio={self.d_audio}, d_text={self.d_text} "
                             f"(backbones {self.backbones.get('audio')}, {self.backbones.get('text')}), "
                             f"got {a.shape[1]} and {t.shape[1]}")
        out = []
        for task in tasks or self.tasks:
            tm = self.models[task]
            keep = subsample_positions(len(a), tm.config.get("max_segments"))
            if len(a) == 0:
                xa = torch.from_numpy(tm.prep.tensors["audio_mean"].numpy()[None, None, :].copy())
                xt = torch.from_numpy(tm.prep.tensors["text_mean"].numpy()[None, None, :].copy())
                mask = torch.ones(1, 1, dtype=torch.bool)
            else:
                xa = torch.from_numpy(a[keep])[None]
                xt = torch.from_numpy(t[keep])[None]
                mask = torch.ones(1, len(keep), dtype=torch.bool)
            doc = None
            if tm.prep.d_doc:
                if doc_stats is None:
                    raise ValueError(f"predict: task {task!r} was trained with document statistics; pass doc_stats=")
                doc = tm.prep.transform_doc(torch.from_numpy(feature_vector(doc_stats))[None], 1).to(self.device)
            with torch.no_grad():
                pa, pt = tm.prep.transform(xa, xt, mask)
                res = tm.model(pa.to(self.device), pt.to(self.device), mask.to(self.device), doc=doc)
            probs = torch.softmax(res["logits"].float(), dim=-1)[0].cpu().numpy()
            raw = None
            if tm.config.get("calibration"):
                from .calibration import apply_calibration

                raw, probs = probs, apply_calibration(probs[None], tm.config["calibration"])[0].astype(np.float32)
            emb = {k: res[k][0].float().cpu().numpy() for k in ("z_a", "z_t", "z_j", "h_a", "h_t", "h_j")}
            attn = {} if len(a) == 0 else {k: res[k][0].float().cpu().numpy() for k in ("attn_a", "attn_t", "attn_j")
                                           if res.get(k) is not None}
            if len(a) and res.get("seg_logits") is not None:  # segment vote: each voter's share of the chosen class
                attn["vote"] = vote_shares(res["seg_logits"][0], res["seg_mask"][0], int(np.argmax(probs)))
            out.append(TaskPrediction(task=task, class_names=list(tm.class_names), probs=probs,
                                      label=tm.class_names[int(np.argmax(probs))], embeddings=emb, raw_probs=raw,
                                      attention=attn, positions=np.asarray(keep if len(a) else [], np.int64)))
        return out


def load_model_dir(path: str | Path, device: str = "cpu") -> TrainedBundle:
    """Load a run directory (runs/NAME), its models/ folder, or one task folder.

    Raises ConfigError with one line when the directory is missing, corrupt or was written
    by an incompatible format version.
    """
    from ..devices import pick_device

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: model directory not found")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a directory (pass the run directory written by `hilbert train`)")
    if (p / CONFIG).is_file():
        task_dirs = [p]
    else:
        base = p / "models" if (p / "models").is_dir() else p
        task_dirs = sorted(d for d in base.iterdir() if d.is_dir() and (d / CONFIG).is_file()) if base.is_dir() else []
    if not task_dirs:
        raise ConfigError(f"{p}: no trained model here (expected models/<task>/{CONFIG} from `hilbert train`)")
    dev = pick_device(device)
    models: dict[str, TaskModel] = {}
    for d in task_dirs:
        tm = _load_task_dir(d, dev)
        if tm.task in models:
            raise ConfigError(f"{d / CONFIG}: task = {tm.task!r} is also the task of {models[tm.task].path / CONFIG}")
        models[tm.task] = tm
    return TrainedBundle(p, models, dev)
