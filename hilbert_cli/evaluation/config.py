"""The `[compare]` section of a recipe: typed (Recipe.compare), read by `hilbert compare`.

    [compare]
    name = "parent_compare"              # run directory <output_dir>/<name> (default <recipe>_compare)
    tasks = ["spectrum"]                 # default: every task of the recipe
    variants = ["transfer", "transfer_moe", "contrastive_moe", "hilbert"]   # default: the recipe's

    [[compare.variants]]                 # or tables, for baselines on other features:
    name = "CLAP-LAION"
    variant = "transfer"                 # pooled and classified like the transfer variant
    features = "work/features/clapLaion__clapLaion"   # hilbert embed work/ --audio clapLaion --text clapLaion
    loss = { }                           # LossConfig overrides for this row
    model = { }                          # ModelConfig overrides for this row

    [compare.ablation]                   # paper Table 4: the 7 non-empty subsets of {contrastive, cka, mi}
    enabled = true
    weights = { contrastive = 0.1, cka = 0.1, mi = 0.1 }   # weight of a loss when it is on (default: [loss])
    include_ce_only = false              # also the empty subset (cross-entropy only)

    [compare.sweep]                      # loss-weight sensitivity, one weight varied, the others fixed
    enabled = true
    losses = ["contrastive", "cka", "mi"]
    values = [0, 0.1, 0.3, 1, 3]

    [compare.stats]
    n_boot = 2000                        # bootstrap replicates (intervals, paired bootstrap test)
    level = 0.95
    test = "auto"                        # auto (DeLong for binary ungrouped tasks, else paired bootstrap) | delong | bootstrap
    reference = "hilbert"                # test every variant against this one (default: all pairs)
    seed = 0

    [compare.diagnostics]
    enabled = true                       # CKA / InfoNCE / gate / masking figures per variant

Unknown keys are errors naming the key path (``compare.sweep.valuez: unknown key``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, format_validation_error
from ..nn.config import ModelConfig, Variant
from ..training.config import LossConfig, SafeName

LossName = Literal["contrastive", "cka", "mi"]
LOSSES: tuple[str, ...] = ("contrastive", "cka", "mi")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSpec(_Strict):
    """One row of the variants table."""

    name: str = Field(min_length=1)
    variant: Variant = "hilbert"
    #: another features dataset of the same recordings (e.g. CLAP embeddings); default: the recipe's
    features: Optional[Path] = None
    model: dict[str, Any] = Field(default_factory=dict)
    loss: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _model_keys(cls, v):
        if "variant" in v:
            raise ValueError("set the row's `variant`, not model.variant")
        ModelConfig.model_validate(v)  # names an unknown key / bad value now
        return v

    @field_validator("loss")
    @classmethod
    def _loss_keys(cls, v):
        LossConfig.model_validate(v)
        return v

    def model_config_for(self, base: ModelConfig) -> ModelConfig:
        return ModelConfig.model_validate({**base.model_dump(), **self.model, "variant": self.variant})

    def loss_config_for(self, base: LossConfig) -> LossConfig:
        return LossConfig.model_validate({**base.model_dump(), **self.loss})


class AblationSection(_Strict):
    enabled: bool = True
    #: weight of each loss when it is switched on (default: the recipe's [loss], 0.1 where that is 0)
    weights: dict[LossName, float] = Field(default_factory=dict)
    include_ce_only: bool = False
    tasks: Optional[list[str]] = None

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        bad = [k for k, w in v.items() if not w > 0]
        if bad:
            raise ValueError(f"weights must be > 0 (a switched-on loss): {', '.join(bad)}")
        return v


class SweepSection(_Strict):
    enabled: bool = True
    losses: list[LossName] = Field(default_factory=lambda: list(LOSSES), min_length=1)
    values: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.3, 1.0, 3.0], min_length=2)
    tasks: Optional[list[str]] = None

    @field_validator("values")
    @classmethod
    def _nonneg(cls, v):
        if any(x < 0 for x in v):
            raise ValueError("weights must be >= 0")
        return sorted(set(float(x) for x in v))


class StatsSection(_Strict):
    n_boot: int = Field(2000, ge=100, le=100_000)
    level: float = Field(0.95, gt=0.5, lt=1.0)
    test: Literal["auto", "delong", "bootstrap"] = "auto"
    reference: Optional[str] = None
    seed: int = 0


class DiagnosticsSection(_Strict):
    enabled: bool = True


class CompareSection(_Strict):
    name: Optional[SafeName] = None
    tasks: Optional[list[str]] = None
    variants: Optional[list[Union[Variant, VariantSpec]]] = None
    ablation: AblationSection = Field(default_factory=AblationSection)
    sweep: SweepSection = Field(default_factory=SweepSection)
    stats: StatsSection = Field(default_factory=StatsSection)
    diagnostics: DiagnosticsSection = Field(default_factory=DiagnosticsSection)

    @model_validator(mode="after")
    def _check(self) -> "CompareSection":
        specs = self.variant_specs(["hilbert"]) if self.variants else []
        names = [s.name for s in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variant name(s) listed twice: {', '.join(dup)}")
        if self.stats.reference is not None and specs and self.stats.reference not in names:
            raise ValueError(f"stats.reference {self.stats.reference!r} is not among the variants {names}")
        return self

    def variant_specs(self, recipe_variants: list[str]) -> list[VariantSpec]:
        items = self.variants if self.variants else list(recipe_variants)
        return [VariantSpec(name=v, variant=v) if isinstance(v, str) else v for v in items]


def parse_compare(raw: Union[dict, CompareSection, None], source: str = "recipe") -> CompareSection:
    """Validate a recipe's `compare` table -> CompareSection (ConfigError naming the key path).
    A Recipe's `compare` is already one (load_recipe validates it with the rest of the recipe)."""
    if isinstance(raw, CompareSection):
        return raw
    try:
        return CompareSection.model_validate(raw or {})
    except ValidationError as exc:
        msg = format_validation_error(exc, source)
        # prefix every key path with "compare."
        head, _, rest = msg.partition(": ")
        parts = [p if p.startswith("compare") else f"compare.{p}" for p in rest.split("; ")]
        raise ConfigError(f"{head}: " + "; ".join(parts)) from exc


def ablation_combos(include_ce_only: bool = False) -> list[tuple[str, ...]]:
    """The non-empty subsets of {contrastive, cka, mi} (7), in the paper's order; () first if asked."""
    import itertools

    combos = [c for r in (1, 2, 3) for c in itertools.combinations(LOSSES, r)]
    return ([()] if include_ce_only else []) + combos
