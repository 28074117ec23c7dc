"""Standard exports of prepared recordings: RTTM, SRT, WebVTT and Praat TextGrid.

The words/turns tables under WORK/prepare are hilbert's own format; a clinical team opens
diarization and transcripts in pyannote (RTTM), a video player or subtitle editor (SRT, VTT)
and Praat or an annotation tool (TextGrid). Each format is written by the library its users
rely on (pyannote.core, srt, webvtt-py, praatio), one file per recording per format:

    OUT/<recording_id>.rttm       turns table: one SPEAKER line per turn
    OUT/<recording_id>.srt        words table: "SPEAKER: words" cues
    OUT/<recording_id>.vtt        words table: "<v SPEAKER>words" cues
    OUT/<recording_id>.TextGrid   one words tier per speaker, plus a "turns" tier

named like every work file (hilbert_cli.batch.work_name: the input tree mirrored, long names
cut and hashed). SRT/VTT cues hold one speaker's consecutive words and end at a speaker change,
at a pause longer than MAX_PAUSE_S, or before a cue would last longer than max_cue_s; both files
are read back by `hilbert prepare --transcripts` with their speakers.

RTTM is space-separated, so the file id (uri) and speaker labels must hold no white space:
each white-space or control character is written as %XX (its UTF-8 bytes). recording_id uses
the same %XX escapes for the file-name bytes (docs/CONTRACTS.md), so name_bytes(uri) is still
the file name and recording_id_from_uri() gives the recording_id back.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pyarrow as pa

from . import batch
from .errors import ConfigError, InputError
from .parquet_io import atomic_write, clean_stale_temps, read_metadata, read_table

#: every export format, in the order they are written
FORMATS = ("rttm", "srt", "vtt", "textgrid")
SUFFIX = {"rttm": ".rttm", "srt": ".srt", "vtt": ".vtt", "textgrid": ".TextGrid"}
#: a cue ends before it would last longer than this (seconds; subtitle practice is ~7 s)
MAX_CUE_S = 7.0
#: a silence longer than this inside one speaker's words starts a new cue (seconds)
MAX_PAUSE_S = 2.0
#: the TextGrid tier of speaker turns (speakers' word tiers are named by the speaker)
TURNS_TIER = "turns"
STAGE = "export"

_UNSAFE_RTTM = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_formats(text: str) -> tuple[str, ...]:
    """`rttm,srt` -> ("rttm", "srt"); an unknown name is one ConfigError naming the valid ones."""
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise ConfigError(f"--formats '{text}': expected a comma-separated list of {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in names)


def rttm_token(text: str) -> str:
    """`text` as one RTTM field: white space and control characters as %XX of their UTF-8 bytes."""
    return _UNSAFE_RTTM.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode("utf-8")), text)


def rttm_uri(recording_id: str) -> str:
    """The RTTM file id of a recording: its recording_id, white space written as %XX."""
    return rttm_token(recording_id)


def recording_id_from_uri(uri: str) -> str:
    """The recording_id an RTTM uri (from rttm_uri) stands for."""
    return batch.name_text(batch.name_bytes(uri))


# --- tables -> exported text ---------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: consecutive words of one speaker."""

    start_s: float
    end_s: float
    speaker: str
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _clean_word(word: str) -> str:
    return " ".join(str(word).split())  # ASR words carry a leading space; no newline may split a cue


def _word_rows(words: pa.Table) -> list[tuple[float, float, str, str]]:
    """(start_s, end_s, speaker, word) in time order (word_index breaks ties), empty words dropped."""
    cols = words.select(["word_index", "start_s", "end_s", "speaker", "word"]).to_pydict()
    rows = sorted(zip(cols["start_s"], cols["word_index"], cols["end_s"], cols["speaker"], cols["word"]))
    return [(float(s), max(float(e), float(s)), str(k or ""), _clean_word(w))
            for s, _, e, k, w in rows if _clean_word(w or "")]


def build_cues(words: pa.Table, max_cue_s: float = MAX_CUE_S, max_pause_s: float = MAX_PAUSE_S) -> list[Cue]:
    """Group the words into cues: a new cue at a speaker change, a long pause, or the length limit."""
    cues: list[Cue] = []
    cur: list[tuple[float, float, str, str]] = []
    for row in _word_rows(words):
        start, end, speaker, _ = row
        if cur and (speaker != cur[0][2] or start - cur[-1][1] > max_pause_s or end - cur[0][0] > max_cue_s):
            cues.append(_cue(cur))
            cur = []
        cur.append(row)
    if cur:
        cues.append(_cue(cur))
    return cues


def _cue(rows: Sequence[tuple[float, float, str, str]]) -> Cue:
    start = rows[0][0]
    end = max(max(r[1] for r in rows), start + 0.001)  # a cue must end after it starts
    return Cue(start, end, rows[0][2], tuple(r[3] for r in rows))


def srt_text(cues: Iterable[Cue]) -> str:
    """SubRip (srt library): each cue as 'SPEAKER: words'."""
    import srt

    subs = [srt.Subtitle(index=i, start=timedelta(seconds=c.start_s), end=timedelta(seconds=c.end_s),
                         content=f"{c.speaker}: {c.text}") for i, c in enumerate(cues, 1)]
    return srt.compose(subs, reindex=False)


def _vtt_clock(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def vtt_text(cues: Iterable[Cue]) -> str:
    """WebVTT (webvtt-py): each cue as '<v SPEAKER>words', text escaped as the format requires."""
    import webvtt

    captions = [webvtt.Caption(_vtt_clock(c.start_s), _vtt_clock(c.end_s),
                               f"<v {html.escape(c.speaker, quote=False)}>{html.escape(c.text, quote=False)}")
                for c in cues]
    buf = io.StringIO()
    webvtt.WebVTT(captions=captions).write(buf, format="vtt")
    return buf.getvalue().rstrip("\n") + "\n"


def rttm_text(turns: pa.Table, recording_id: str) -> str:
    """RTTM (pyannote.core): one SPEAKER line per turn of the turns table."""
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=rttm_uri(recording_id))
    cols = turns.select(["turn_index", "start_s", "end_s", "speaker"]).to_pydict()
    for i, s, e, k in zip(cols["turn_index"], cols["start_s"], cols["end_s"], cols["speaker"]):
        if float(e) > float(s):
            ann[Segment(float(s), float(e)), int(i)] = rttm_token(str(k))
    return ann.to_rttm()


def _speaker_intervals(rows: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Time-ordered (start, end, label) made valid for one TextGrid tier: an interval is cut at the
    next one's start, and one left too short to draw is joined to the interval before it."""
    out: list[list] = []
    for i, (s, e, label) in enumerate(rows):
        nxt = rows[i + 1][0] if i + 1 < len(rows) else e
        s = max(s, out[-1][1]) if out else s
        e = min(e, max(nxt, s))
        if e - s < 1e-3:
            if out:
                out[-1][2] = f"{out[-1][2]} {label}"
                continue
            e = s + 1e-3
        out.append([s, e, label])
    return [(s, e, k) for s, e, k in out]


def _turn_regions(turns: pa.Table) -> list[tuple[float, float, str]]:
    """The turns as one non-overlapping tier: each stretch labelled by who speaks in it
    ('SPEAKER_00', or 'SPEAKER_00+SPEAKER_01' where diarization has them overlap)."""
    cols = turns.select(["start_s", "end_s", "speaker"]).to_pydict()
    spans = [(float(s), float(e), str(k)) for s, e, k in zip(cols["start_s"], cols["end_s"], cols["speaker"])
             if float(e) > float(s)]
    cuts = sorted({t for s, e, _ in spans for t in (s, e)})
    out: list[list] = []
    for a, b in zip(cuts, cuts[1:]):
        who = sorted({k for s, e, k in spans if s <= a and e >= b})
        if not who:
            continue
        label = "+".join(who)
        if out and out[-1][1] == a and out[-1][2] == label:
            out[-1][1] = b
        else:
            out.append([a, b, label])
    return [(s, e, k) for s, e, k in out]


def write_textgrid(words: pa.Table, turns: pa.Table, duration_s: float, path: Path) -> None:
    """Praat TextGrid (praatio, long format): one interval tier of words per speaker, then 'turns'."""
    from praatio import textgrid

    rows = [(round(s, 6), round(e, 6), k, w) for s, e, k, w in _word_rows(words)]  # no float noise in the file
    tiers = {(k if k != TURNS_TIER else f"{k} (speaker)"): _speaker_intervals([(s, e, w) for s, e, kk, w in rows
                                                                              if kk == k])
             for k in sorted({r[2] for r in rows})}
    tiers[TURNS_TIER] = _turn_regions(turns)
    end = max([duration_s, 0.001, *(iv[1] for ivs in tiers.values() for iv in ivs)])
    tg = textgrid.Textgrid(0.0, end)
    for name, intervals in tiers.items():
        tg.addTier(textgrid.IntervalTier(name, intervals, 0.0, end))
    atomic_write(path, lambda tmp: tg.save(tmp, format="long_textgrid", includeBlankSpaces=True,
                                           minimumIntervalLength=None, reportingMode="error"))


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# --- a batch of recordings -----------------------------------------------------------------


@dataclass
class ExportRun:
    result: batch.BatchResult
    out_dir: Path
    written: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def export_path(out_dir: Path, recording_id: str, fmt: str) -> Path:
    """OUT/<recording_id>.<ext>, named by the one work-file naming function."""
    return Path(out_dir) / batch.work_name(recording_id, SUFFIX[fmt])


def _read_prepared(work_dir: Path, rec: batch.Recording) -> tuple[pa.Table, pa.Table, float]:
    from .prepare.pipeline import turns_path

    tpath = turns_path(work_dir, rec.recording_id)
    if not tpath.is_file():
        raise InputError(f"{tpath}: no turns table for '{rec.recording_id}' (run hilbert prepare again)")
    words, turns = read_table(rec.path), read_table(tpath)
    try:
        duration = float(read_metadata(rec.path).get("duration_s") or 0.0)
    except (TypeError, ValueError):
        duration = 0.0
    return words, turns, duration


def export_recording(work_dir: Path, rec: batch.Recording, formats: Sequence[str], out_dir: Path,
                     max_cue_s: float = MAX_CUE_S) -> list[Path]:
    """Write the chosen formats of one prepared recording; returns the files written."""
    words, turns, duration = _read_prepared(work_dir, rec)
    rid = rec.recording_id
    cues = build_cues(words, max_cue_s) if {"srt", "vtt"} & set(formats) else []
    writers: dict[str, Callable[[Path], None]] = {
        "rttm": lambda p: _write_text(p, rttm_text(turns, rid)),
        "srt": lambda p: _write_text(p, srt_text(cues)),
        "vtt": lambda p: _write_text(p, vtt_text(cues)),
        "textgrid": lambda p: write_textgrid(words, turns, duration, p),
    }
    written = []
    for fmt in formats:
        path = export_path(out_dir, rid, fmt)
        writers[fmt](path)
        written.append(path)
    return written


def export_work_dir(work_dir: Path, formats: Sequence[str] = FORMATS, out_dir: Path | None = None, *,
                    max_cue_s: float = MAX_CUE_S, show_progress: bool = True) -> ExportRun:
    """Export every prepared recording under WORK/prepare (by the recording_id its words table
    records); one recording that cannot be exported is one error row (WORK/errors/export), never a
    stopped batch."""
    work_dir = Path(work_dir)
    formats = parse_formats(",".join(formats))
    if not max_cue_s > 0:
        raise ConfigError(f"--max-cue-s {max_cue_s}: must be > 0")
    words_root = work_dir / "prepare" / "words"
    recordings = batch.discover_outputs(words_root) if words_root.is_dir() else []
    if not recordings:
        raise InputError(f"{words_root}: no prepared recordings (run hilbert prepare with --out {work_dir})")
    out = Path(out_dir) if out_dir is not None else work_dir / STAGE
    if out.is_dir():
        clean_stale_temps(out)  # a killed export's temps (never a live run's)
    run = ExportRun(batch.BatchResult(STAGE), out)

    def process(rec: batch.Recording) -> None:
        run.written.extend(export_recording(work_dir, rec, formats, out, max_cue_s))

    from .engines.runner import run_batch

    run.result = run_batch(recordings, stage=STAGE, out_root=work_dir, is_done=lambda rec: False,
                                 process=process, overwrite=True, show_progress=show_progress)
    return run
