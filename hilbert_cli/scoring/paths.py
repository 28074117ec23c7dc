"""Where a score run's files go: the per-recording score parts under WORK/score/<model_key>/,
the scores table (`--out` file or DIR/part-K-of-N.parquet), and the directories beside it
(manifest, evidence) that no glob of the scores picks up."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..batch import Shard, is_complete, output_path
from ..contracts.scores import ScorePartMeta
from ..errors import InputError


def part_path(work_dir: Path, key: str, recording_id: str) -> Path:
    return output_path(Path(work_dir), f"score/{key}", recording_id)


def part_matches(path: Path, config_hash: str, source: str | Path | None = None) -> ScorePartMeta | None:
    """The part's metadata when it exists with this config hash and was made from `source` when
    given (batch.same_source: a 0.1 part names no source and is taken as it is); else None."""
    if not is_complete(path, config_hash, source):
        return None
    try:
        return ScorePartMeta.read(path)
    except InputError:
        return None


def part_is_done(path: Path, config_hash: str, source: str | Path | None = None) -> bool:
    """An ok part of this config hash and source (see part_matches)."""
    meta = part_matches(path, config_hash, source)
    return meta is not None and meta.status == "ok"


def manifest_dir(out_path: Path) -> Path:
    """Where a run's manifest parts go, beside its table (see the module docstring)."""
    return beside_table(out_path, "manifest")


def beside_table(out_path: Path, what: str) -> Path:
    """A directory for `what` next to the scores table, out of any glob of the scores:
    scores.parquet -> scores.<what>/; DIR/part-K-of-N.parquet -> DIR/_<what>/."""
    if _PART_NAME.fullmatch(out_path.name):
        return out_path.parent / f"_{what}"
    return out_path.with_name(_PART_NAME.sub("", out_path.name).removesuffix(".parquet") + f".{what}")


_PART_NAME = re.compile(r"\.?part-\d+-of-\d+\.parquet$")


def shard_output_path(out: str | os.PathLike, shard: Shard) -> Path:
    """Where a run's table goes.

    `--out scores.parquet`: that file (with --shard K/N, N > 1: scores.part-K-of-N.parquet);
    `--out DIR/` (an existing directory, a trailing slash, or no .parquet suffix):
    DIR/part-K-of-N.parquet (part-0-of-1.parquet unsharded), so DIR is a dataset of shards.
    """
    text = str(out)
    p = Path(out).expanduser()
    tag = f"part-{shard.index}-of-{shard.count}"
    if text.endswith(("/", os.sep)) or p.is_dir() or p.suffix.lower() != ".parquet":
        return p / f"{tag}.parquet"
    if shard.count == 1:
        return p
    return p.with_name(f"{p.stem}.{tag}{p.suffix}")
