"""A recording, how its id is written as text, and which shard it falls in: the layer under
batch discovery, the manifest and every stage (docs/CONTRACTS.md, "Recording ids and
work-file names")."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["Recording", "Skipped", "Shard", "name_text", "as_text", "name_bytes"]


@dataclass(frozen=True, order=True)
class Recording:
    recording_id: str
    path: Path


@dataclass(frozen=True)
class Skipped:
    """A file discovery passed over; recording_id is the id it would have (its manifest row)."""

    path: Path
    reason: str
    recording_id: str = ""


@dataclass(frozen=True)
class Shard:
    """Shard K of N (0-based K), e.g. from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "Shard":
        if not text:
            return cls()
        try:
            k, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard '{text}': expected K/N with whole numbers, e.g. 0/4") from None
        if n < 1 or not 0 <= k < n:
            raise ConfigError(f"--shard '{text}': need 0 <= K < N (K is 0-based)")
        return cls(k, n)

    def contains(self, recording_id: str) -> bool:
        if self.count == 1:
            return True
        h = int.from_bytes(hashlib.sha1(recording_id.encode("utf-8")).digest()[:8], "big")
        return h % self.count == self.index

    @property
    def tag(self) -> str:
        return "" if self.count == 1 else f"shard-{self.index}-of-{self.count}"


_PCT_HEX = re.compile(rb"%[0-9A-Fa-f]{2}")


def name_text(name: str | bytes) -> str:
    """Any file-system name (bytes, or str as os.fsdecode gives it) as valid UTF-8 text.

    Valid UTF-8 is kept as is; each byte that is not valid UTF-8 becomes %XX, and a '%' that
    is followed by two hex digits becomes %25, so the mapping is reversible:
    os.fsdecode(urllib.parse.unquote_to_bytes(text)) is the name again (see name_bytes).
    """
    raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
    raw = _PCT_HEX.sub(lambda m: b"%25" + m.group(0)[1:], raw)
    out, i = [], 0
    while i < len(raw):
        try:
            out.append(raw[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(raw[i:i + exc.start].decode("utf-8"))
            out.append("".join(f"%{b:02X}" for b in raw[i + exc.start:i + exc.end]))
            i += exc.end
    return "".join(out)


def as_text(text: str) -> str:
    """`text` when it is already valid UTF-8 (a recording_id, a message); else name_text(text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return name_text(text)
    return text


def name_bytes(text: str) -> bytes:
    """The inverse of name_text: the file-system name (bytes) a recording_id stands for."""
    return urllib.parse.unquote_to_bytes(text)
