"""The one report writer: report.md of `hilbert train` and `hilbert compare` alike.

A report is a title and a list of Sections; train (train_report.py) and compare
(compare_report.py) differ only in the sections they hand over. Written atomically (a temp
file next to report.md, then a rename), so a killed run never leaves half a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Section", "render", "write_report"]


@dataclass
class Section:
    """A heading (none for an untitled block under the title) and its markdown lines, the blank
    line that separates it from the next section included."""

    title: Optional[str] = None
    lines: list[str] = field(default_factory=list)
    #: heading level (2 = ``##``)
    level: int = 2


def render(title: str, sections: Sequence[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        if s.title:
            lines += [f"{'#' * s.level} {s.title}", ""]
        lines += s.lines
    return "\n".join(lines)


def write_report(path: Path, title: str, sections: Sequence[Section]) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(title, sections))
    tmp.replace(path)
    return path
