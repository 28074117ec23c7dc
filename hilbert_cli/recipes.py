"""Recipes: TOML files that describe one training experiment, validated by a typed schema.

    name = "forbow_parent"               # run directory: <output_dir>/<name>
    variants = ["hilbert", "transfer"]   # cross-validated side by side over the same folds
    [data]   features, labels, id_column, group_column   (or [data.synthetic])
    [[tasks]] name, column, classes | n_classes
    [model]  ModelConfig (nn/config.py)     [loss] LossConfig     [train] TrainConfig
    [compare]                optional: CompareSection (evaluation/config.py, read by `hilbert compare`)

Unknown keys, wrong types and missing files raise ConfigError with one line naming the
file and the key path (e.g. ``recipes/x.toml: train.n_folds: Input should be a valid
integer``). Relative data paths are resolved against the current directory; a built-in
recipe is found by name (`hilbert recipes list`).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_serializer, field_validator,
                      model_validator)

from .errors import ConfigError, format_validation_error
from .evaluation.config import CompareSection
from .nn.config import ModelConfig, Variant
from .training.config import LossConfig, SafeName, TrainConfig

__all__ = ["Recipe", "TaskSpec", "DataSection", "SyntheticData", "load_recipe", "find_recipe", "builtin_recipes",
           "builtin_recipes_dir", "apply_overrides", "format_validation_error"]

Signal = Literal["audio", "text", "interaction", "random"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Strict):
    """One prediction task = one label column (one model per task, as in the paper)."""

    name: SafeName
    #: label column in the labels table (default: the task name)
    column: Optional[str] = None
    #: class values in order (as written in the labels table); default: sorted values found
    classes: Optional[list[str]] = None
    #: expected number of classes (checked against the labels)
    n_classes: Optional[int] = Field(None, ge=2)
    description: str = ""
    #: synthetic data only: which modality carries the label
    signal: Optional[Signal] = None

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_str(cls, v):
        return [str(c) for c in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _check(self) -> "TaskSpec":
        if self.classes is not None:
            if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
                raise ValueError("classes must list at least 2 distinct values")
            if self.n_classes is not None and self.n_classes != len(self.classes):
                raise ValueError(f"n_classes = {self.n_classes} but classes lists {len(self.classes)}")
        return self

    @property
    def label_column(self) -> str:
        return self.column or self.name


class SyntheticData(_Strict):
    """Features built in memory (training/synthetic.py): runs anywhere, no files needed."""

    n_recordings: int = Field(200, ge=8)
    min_segments: int = Field(8, ge=1)
    max_segments: int = Field(24, ge=1)
    d_audio: int = Field(32, ge=2)
    d_text: int = Field(24, ge=2)
    n_groups: Optional[int] = Field(None, ge=2)
    strength: float = Field(1.0, ge=0.0)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "SyntheticData":
        if self.max_segments < self.min_segments:
            raise ValueError("max_segments must be >= min_segments")
        return self


class DataSection(_Strict):
    #: features Parquet file or directory (the embed stage's output)
    features: Optional[Path] = None
    #: labels table, CSV or Parquet: recording_id + one column per task (+ group column)
    labels: Optional[Path] = None
    id_column: str = "recording_id"
    #: group column for grouped CV (speaker, family): no group in train and test at once
    group_column: Optional[str] = None
    #: expected backbone aliases (checked against the features' metadata when it names them)
    audio_model: Optional[str] = None
    text_model: Optional[str] = None
    synthetic: Optional[SyntheticData] = None

    @model_validator(mode="after")
    def _check(self) -> "DataSection":
        if self.synthetic is None and (self.features is None or self.labels is None):
            raise ValueError("set features and labels (or a [data.synthetic] section)")
        if self.synthetic is not None and (self.features is not None or self.labels is not None):
            raise ValueError("use either features/labels or [data.synthetic], not both")
        return self


class Recipe(_Strict):
    name: SafeName
    description: str = ""
    #: runs are written to <output_dir>/<name>/
    output_dir: Path = Path("runs")
    #: variants cross-validated over the same folds: transfer, transfer_moe, contrastive_moe, hilbert
    variants: list[Variant] = Field(default_factory=lambda: ["hilbert"], min_length=1)
    #: variant of the final per-task models (default, or when not among variants: hilbert if
    #: listed, else the first)
    final_variant: Optional[Variant] = None
    data: DataSection
    tasks: list[TaskSpec] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    #: read by `hilbert compare` (variants, ablation, sweep, statistics, diagnostics)
    compare: Optional[CompareSection] = None
    _source: Optional[Path] = PrivateAttr(None)
    #: the [compare] table as written, so a dumped recipe (summary.json, a model's config.json) says
    #: what the file said rather than every default
    _compare_raw: Optional[dict[str, Any]] = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_compare_as_written(cls, data, handler):
        recipe = handler(data)
        if isinstance(data, dict) and isinstance(data.get("compare"), dict):
            recipe._compare_raw = data["compare"]
        return recipe

    @field_serializer("compare")
    def _dump_compare(self, section: Optional[CompareSection]):
        if section is None:
            return None
        return self._compare_raw if self._compare_raw is not None else section.model_dump(mode="json",
                                                                                          exclude_unset=True)

    @field_validator("model", mode="before")
    @classmethod
    def _no_variant_in_model(cls, v):
        if isinstance(v, dict) and "variant" in v:
            raise ValueError("set `variants = [...]` at the top level, not model.variant")
        return v

    @model_validator(mode="after")
    def _check(self) -> "Recipe":
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"task name(s) listed twice: {', '.join(dup)}")
        if len(set(self.variants)) != len(self.variants):
            raise ValueError("variants lists a variant twice")
        synthetic = self.data.synthetic is not None
        for t in self.tasks:
            if synthetic and t.signal is None:
                raise ValueError(f"task {t.name!r}: synthetic data needs signal = audio|text|interaction|random")
            if not synthetic and t.signal is not None:
                raise ValueError(f"task {t.name!r}: signal is only for [data.synthetic]")
        return self

    @property
    def final(self) -> Variant:
        if self.final_variant and self.final_variant in self.variants:
            return self.final_variant
        return "hilbert" if "hilbert" in self.variants else self.variants[0]

    def model_config_for(self, variant: str) -> ModelConfig:
        return self.model.model_copy(update={"variant": variant})

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def check_files(self, source: str = "recipe") -> None:
        """One-line ConfigError naming the key and the file when a data file is missing."""
        d = self.data
        if d.synthetic is not None:
            return
        if not d.features.exists():
            raise ConfigError(f"{source}: data.features: not found: {d.features}")
        if not d.labels.is_file():
            raise ConfigError(f"{source}: data.labels: file not found: {d.labels}")


# ---- loading ----------------------------------------------------------------------------------

def builtin_recipes_dir() -> Path:
    """hilbert_cli/data/recipes when installed, else the source tree's recipes/."""
    here = Path(__file__).resolve().parent
    for d in (here / "data" / "recipes", here.parent / "recipes"):
        if d.is_dir():
            return d
    return here / "data" / "recipes"


def builtin_recipes() -> dict[str, Path]:
    d = builtin_recipes_dir()
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe path, or the name of a built-in recipe (with or without .toml)."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    builtin = builtin_recipes()
    key = p.name[:-5] if p.name.endswith(".toml") else p.name
    if key in builtin and (len(p.parts) == 1 or not p.exists()):
        return builtin[key]
    known = ", ".join(builtin) or "none"
    raise ConfigError(f"{name_or_path}: recipe not found (not a file, nor a built-in recipe: {known})")


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """Apply `key.path=value` overrides (value parsed as TOML, else a plain string)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE (e.g. train.n_folds=5)")
        key, value = item.split("=", 1)
        key = key.strip()
        if not _KEY.match(key):
            raise ConfigError(f"--set {item}: bad key {key!r}")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item}: {part} is not a table")
            node = nxt
        node[parts[-1]] = parsed
    return raw


def load_recipe(name_or_path: str | Path, *, overrides: Iterable[str] = (), check_files: bool = False) -> Recipe:
    """Read + validate a recipe (path or built-in name). check_files: data files must exist."""
    path = find_recipe(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc})") from exc
    raw = apply_overrides(raw, overrides)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    recipe._source = path
    if check_files:
        recipe.check_files(str(path))
    return recipe


def recipe_source(recipe: Recipe) -> Optional[Path]:
    return getattr(recipe, "_source", None)
