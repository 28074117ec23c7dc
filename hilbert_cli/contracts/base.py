"""The typed metadata every hilbert Parquet file carries (docs/CONTRACTS.md, "Metadata").

One JSON object under the schema-metadata key ``hilbert``. Each table has a pydantic model of
it (a subclass of `TableMeta`): writers build the model and write through `write_table`,
readers get the model from `read`/`from_metadata` instead of guessing at dict keys. Keys a model
does not name are kept (``extra="allow"``), so a file of a newer or older hilbert reads, and a
metadata block copied into another (features -> prepare, config.json -> features) survives whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import __version__
from ..errors import InputError
from ..parquet_io import read_metadata, write_table_atomic

T = TypeVar("T", bound="TableMeta")


class Lenient(BaseModel):
    """A metadata block as files hold it: unknown keys kept, and a null where the model has a
    non-null default read as absent (0.1's readers took `meta.get(key) or default`)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _nulls_as_absent(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        drop = [key for name, f in cls.model_fields.items()
                if raw.get(key := f.alias or name, 0) is None
                and (f.default_factory is not None or f.default is not None)]
        return {k: v for k, v in raw.items() if k not in drop} if drop else raw


class TableMeta(Lenient):
    """Keys common to every table's metadata: who wrote it, which stage, which format."""

    #: the format this hilbert writes for the table; a file without the key is format 1 (0.1)
    FORMAT_VERSION: ClassVar[int] = 1
    #: legacy key names, old -> current (a file of 0.1 is read with them renamed)
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {}

    tool: str = "hilbert"
    tool_version: str = Field(default_factory=lambda: __version__)
    stage: str = ""
    format_version: int = 1

    @model_validator(mode="before")
    @classmethod
    def _rename_legacy_keys(cls, raw: Any) -> Any:
        """0.1's key names -> today's (also for a block nested in another, e.g. features.prepare)."""
        if not isinstance(raw, dict) or not any(old in raw for old in cls.LEGACY_KEYS):
            return raw
        out = dict(raw)
        for old, new in cls.LEGACY_KEYS.items():
            if old in out:
                value = out.pop(old)
                out.setdefault(new, value)
        return out

    @classmethod
    def from_metadata(cls: type[T], meta: Mapping[str, Any] | "TableMeta" | None, *,
                      source: str | os.PathLike = "metadata", error: type[Exception] = InputError,
                      prefix: str = "") -> T:
        """The model of a metadata dict as read from a file (legacy keys renamed; {} -> defaults).
        A value of the wrong type is one `error` line naming `source` and the key."""
        if isinstance(meta, cls):
            return meta
        if isinstance(meta, TableMeta):
            meta = meta.to_metadata()
        try:
            return cls.model_validate(dict(meta or {}))
        except ValidationError as exc:
            raise error(f"{source}: {validation_line(exc, prefix)}") from None

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-ready dict written under the ``hilbert`` key: the keys that were set (a
        writer's, or a file's as read: a block read and written again keeps exactly its keys)."""
        return {"stage": self.stage, **self.model_dump(exclude_unset=True)}

    @classmethod
    def read(cls: type[T], path: str | os.PathLike) -> T:
        """The metadata of a Parquet file as this model (InputError: not a readable Parquet file)."""
        return cls.from_metadata(read_metadata(path), source=path)

    def write_table(self, table: pa.Table, path: str | os.PathLike) -> Path:
        """Write `table` with this metadata, atomically (parquet_io.write_table_atomic)."""
        return write_table_atomic(table, path, self.to_metadata())

    @classmethod
    def current(cls: type[T], **fields: Any) -> T:
        """A model for a file this hilbert writes now (format_version = FORMAT_VERSION)."""
        return cls(format_version=cls.FORMAT_VERSION, **fields)


class OutputMeta(TableMeta):
    """What every per-recording output records, whatever its stage: resume (`batch.is_complete`)
    and discovery (`batch.discover_outputs`) read only these keys."""

    recording_id: Optional[str] = None
    config_hash: Optional[str] = None
    #: the audio file it was made from, where the output records one (words, score parts)
    source_path: Optional[str] = None
    #: that file's `batch.source_fingerprint` (size + hash of its ends), where recorded (words)
    source_fingerprint: Optional[str] = None


def validation_line(exc: ValidationError, prefix: str = "", default: str = "") -> str:
    """`key.sub: problem` of a pydantic error's first problem, on one line: the one formatter of
    options and metadata errors (`prefix` leads the key path, `default` stands for an empty one;
    pydantic's "Value error, " before a validator's own message is dropped)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in (prefix, *err.get("loc", ())) if x != "") or default
    msg = " ".join(str(err.get("msg")).removeprefix("Value error, ").split())
    return f"{loc}: {msg}" if loc else msg
