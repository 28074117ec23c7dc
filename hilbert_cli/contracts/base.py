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
from typing import Any, ClassVar, Mapping, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..parquet_io import read_metadata, write_table_atomic

T = TypeVar("T", bound="TableMeta")


class TableMeta(BaseModel):
    """Keys common to every table's metadata: who wrote it, which stage, which format."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    #: the format this hilbert writes for the table; a file without the key is format 1 (0.1)
    FORMAT_VERSION: ClassVar[int] = 1
    #: legacy key names, old -> current (a file of 0.1 is read with them renamed)
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {}

    tool: str = "hilbert"
    tool_version: str = Field(default_factory=lambda: __version__)
    stage: str = ""
    format_version: int = 1

    @classmethod
    def from_metadata(cls: type[T], meta: Mapping[str, Any] | "TableMeta" | None) -> T:
        """The model of a metadata dict as read from a file (legacy keys renamed; {} -> defaults)."""
        if isinstance(meta, TableMeta):
            meta = meta.to_metadata()
        raw = dict(meta or {})
        for old, new in cls.LEGACY_KEYS.items():
            if old in raw:
                value = raw.pop(old)
                raw.setdefault(new, value)
        return cls.model_validate(raw)

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-ready dict written under the ``hilbert`` key: the keys that were set (a
        writer's, or a file's as read: a block read and written again keeps exactly its keys)."""
        return {"stage": self.stage, **self.model_dump(mode="json", exclude_unset=True)}

    @classmethod
    def read(cls: type[T], path: str | os.PathLike) -> T:
        """The metadata of a Parquet file as this model (InputError: not a readable Parquet file)."""
        return cls.from_metadata(read_metadata(path))

    def write_table(self, table: pa.Table, path: str | os.PathLike) -> Path:
        """Write `table` with this metadata, atomically (parquet_io.write_table_atomic)."""
        return write_table_atomic(table, path, self.to_metadata())

    @classmethod
    def current(cls: type[T], **fields: Any) -> T:
        """A model for a file this hilbert writes now (format_version = FORMAT_VERSION)."""
        return cls(format_version=cls.FORMAT_VERSION, **fields)
