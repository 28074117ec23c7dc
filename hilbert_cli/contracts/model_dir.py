"""A trained model directory's config.json (docs/CONTRACTS.md, "Model directory").

`runs/NAME/models/<task>/config.json` beside `model.safetensors`. The checks a loader makes
(weights hash, keys scoring relies on, widths) are training.checkpoint's; this is the shape.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ConfigDict, Field

from .. import __version__
from .base import Lenient
from .embed import FeaturesMeta

FORMAT = "hilbert-model"
#: config.json's format; a newer one is refused at load
MODEL_FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ModelDirConfig(Lenient):
    """config.json, keys in the order they are written."""

    model_config = ConfigDict(protected_namespaces=())

    format: str = FORMAT
    format_version: int = MODEL_FORMAT_VERSION
    tool_version: str = Field(default_factory=lambda: __version__)
    model_id: Optional[str] = None
    run_name: Optional[str] = None
    task: Optional[str] = None
    variant: Optional[str] = None
    class_names: list[str] = []
    label_map: dict[str, int] = {}
    d_audio: Optional[int] = None
    d_text: Optional[int] = None
    backbones: dict[str, Any] = {}
    max_segments: Optional[int] = None
    model_config_: Optional[dict[str, Any]] = Field(default=None, alias="model_config")
    loss_config: Optional[dict[str, Any]] = None
    train_config: Optional[dict[str, Any]] = None
    epochs: Optional[int] = None
    n_train: Optional[int] = None
    cv: Optional[dict[str, Any]] = None
    features_metadata: dict[str, Any] = {}
    recipe: Optional[dict[str, Any]] = None
    calibration: Optional[dict[str, Any]] = None
    weights_sha256: Optional[str] = None

    @classmethod
    def from_metadata(cls, raw: dict[str, Any]) -> "ModelDirConfig":
        return cls.model_validate(raw)

    def to_metadata(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    @property
    def features(self) -> FeaturesMeta:
        """The features metadata the model was trained on, typed."""
        return FeaturesMeta.from_metadata(self.features_metadata)
