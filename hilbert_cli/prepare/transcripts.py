"""Existing transcripts, used instead of ASR: .json (segments/words), .srt, .vtt, .txt.

Where a transcript is looked for, first match wins:
  --transcripts DIR:  DIR/<recording_id>.<ext>, then DIR/<recording_id minus its audio suffix>.<ext>
  sidecar:            <audio>.<ext> (interview.wav.json), then <audio stem>.<ext> (interview.json)
with <ext> in json, srt, vtt, txt. A transcript's own times are kept (word times when it has
them, else words spread over each segment by character count); a .txt without times is spread
over the recording's voice activity. Speaker labels ("Name: text" lines, <v Name> in VTT,
"speaker" keys in JSON) are kept when every segment has one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError

EXTENSIONS = (".json", ".srt", ".vtt", ".txt")


@dataclass
class TSegment:
    start_s: float | None
    end_s: float | None
    text: str
    speaker: str | None = None
    words: list[tuple[float, float, str]] | None = None  # word timings when the file has them


@dataclass
class Transcript:
    path: Path
    format: str
    segments: list[TSegment]

    @property
    def has_times(self) -> bool:
        return bool(self.segments) and all(s.start_s is not None and s.end_s is not None for s in self.segments)

    @property
    def has_speakers(self) -> bool:
        return bool(self.segments) and all(s.speaker for s in self.segments)


def find_transcript(audio_path: Path, recording_id: str, transcripts_dir: str | None, sidecars: bool) -> Path | None:
    """The transcript of one recording: in transcripts_dir under the recording's own relative
    name (the file-system name its id stands for: docs/CONTRACTS.md), then beside the audio."""
    import os

    from ..batch import name_bytes

    candidates: list[Path] = []
    if transcripts_dir:
        d = Path(transcripts_dir)
        fs_name = os.fsdecode(name_bytes(recording_id))
        for ext in EXTENSIONS:
            candidates.append(d / (fs_name + ext))
        for ext in EXTENSIONS:
            candidates.append(d / Path(fs_name).with_suffix(ext))
    if sidecars:
        p = Path(audio_path)
        for ext in EXTENSIONS:
            candidates.append(p.with_name(p.name + ext))
        for ext in EXTENSIONS:
            candidates.append(p.with_suffix(ext))
    for c in candidates:
        try:
            if c.is_file():
                return c
        except OSError:  # e.g. name.wav.json of a 250-byte name is too long to exist: not a transcript
            continue
    return None


_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?")
_ARROW = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)")
_SPEAKER_PREFIX = re.compile(r"^\s*(?:\[([^\]]{1,40})\]|([A-Za-z][\w .'-]{0,39}?))\s*:\s+(.*)$")
_VOICE = re.compile(r"<v(?:\.[^ >]*)?\s+([^>]+)>")
_TAG = re.compile(r"<[^>]*>")


def _clock(text: str) -> float:
    m = _TIME.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad timestamp '{text}'")
    h, mi, s, frac = m.groups()
    if h is None:
        h, mi = "0", mi
    value = int(h) * 3600 + int(mi) * 60 + int(s)
    if frac:
        value += int(frac.ljust(3, "0")[:3]) / 1000
    return float(value)


def _split_speaker(text: str) -> tuple[str | None, str]:
    m = _SPEAKER_PREFIX.match(text)
    if m and not re.match(r"^\d", (m.group(1) or m.group(2) or "")):
        return (m.group(1) or m.group(2)).strip(), m.group(3).strip()
    return None, text.strip()


def _cues(text: str, vtt: bool) -> list[TSegment]:
    segs: list[TSegment] = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    for block in blocks:
        lines = [ln for ln in block.split("\n")]
        idx = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if idx is None:
            continue  # WEBVTT header, NOTE, STYLE, numbering only
        m = _ARROW.match(lines[idx])
        if not m:
            continue
        start, end = _clock(m.group(1)), _clock(m.group(2))
        body = " ".join(ln.strip() for ln in lines[idx + 1 :] if ln.strip())
        speaker = None
        if vtt:
            v = _VOICE.search(body)
            if v:
                speaker = v.group(1).strip()
        body = _TAG.sub("", body).strip()
        if speaker is None:
            speaker, body = _split_speaker(body)
        if body:
            segs.append(TSegment(start, end, body, speaker))
    return segs


def _json_segments(obj) -> list[TSegment]:
    if isinstance(obj, dict):
        if isinstance(obj.get("segments"), list):
            items = obj["segments"]
        elif isinstance(obj.get("words"), list):
            items = [{"words": obj["words"]}]
        elif isinstance(obj.get("text"), str):
            items = [{"text": obj["text"]}]
        else:
            raise ValueError("expected 'segments', 'words' or 'text'")
    elif isinstance(obj, list):
        items = obj
    else:
        raise ValueError("expected an object or a list of segments")
    segs = []
    for it in items:
        if not isinstance(it, dict):
            raise ValueError("a segment is not an object")
        words = None
        if isinstance(it.get("words"), list):
            words = []
            for w in it["words"]:
                token = str(w.get("word", w.get("text", ""))).strip()
                if token and w.get("start") is not None and w.get("end") is not None:
                    words.append((float(w["start"]), float(w["end"]), token))
            if not words:
                words = None
        text = str(it.get("text", "")).strip()
        if not text and words:
            text = " ".join(w[2] for w in words)
        start = it.get("start", words[0][0] if words else None)
        end = it.get("end", words[-1][1] if words else None)
        speaker = it.get("speaker")
        if speaker is None and isinstance(it.get("words"), list):
            spk = {w.get("speaker") for w in it["words"] if isinstance(w, dict)}
            speaker = spk.pop() if len(spk) == 1 else None
        if text:
            segs.append(TSegment(None if start is None else float(start), None if end is None else float(end),
                                 text, str(speaker) if speaker is not None else None, words))
    return segs


def read_transcript(path: Path) -> Transcript:
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"transcript {path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    ext = path.suffix.lower()
    try:
        if ext == ".json":
            segs = _json_segments(json.loads(raw))
        elif ext in (".srt", ".vtt"):
            segs = _cues(raw, vtt=ext == ".vtt" or raw.lstrip().startswith("WEBVTT"))
        elif ext == ".txt":
            segs = []
            for line in raw.splitlines():
                if line.strip():
                    spk, body = _split_speaker(line)
                    if body:
                        segs.append(TSegment(None, None, body, spk))
        else:
            raise ValueError(f"unsupported transcript type {ext}")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"transcript {path}: not a valid {ext[1:]} transcript ({' '.join(str(exc).split())[:200]})") from exc
    return Transcript(path, ext[1:], segs)


def _spread(text: str, start: float, end: float) -> list[tuple[float, float, str]]:
    toks = text.split()
    if not toks:
        return []
    weights = [len(t) + 1 for t in toks]
    total = float(sum(weights))
    out, t = [], start
    for tok, w in zip(toks, weights):
        d = (end - start) * w / total
        out.append((t, t + d, tok))
        t += d
    return out


def transcript_words(
    tr: Transcript, speech: Sequence[tuple[float, float]], duration_s: float
) -> list[tuple[float, float, str, str | None]]:
    """(start_s, end_s, word, speaker or None) for every word, in time order."""
    out: list[tuple[float, float, str, str | None]] = []
    if tr.has_times:
        for seg in tr.segments:
            if seg.words:
                out.extend((a, b, w, seg.speaker) for a, b, w in seg.words)
            else:
                out.extend((a, b, w, seg.speaker) for a, b, w in _spread(seg.text, seg.start_s, max(seg.end_s, seg.start_s)))
        out.sort(key=lambda x: (x[0], x[1]))
        return out
    # no times: spread the words over voice activity (or the whole recording), by characters
    regions = [r for r in speech if r[1] > r[0]] or ([(0.0, duration_s)] if duration_s > 0 else [(0.0, 0.0)])
    toks: list[tuple[str, str | None]] = [(t, seg.speaker) for seg in tr.segments for t in seg.text.split()]
    if not toks:
        return out
    weights = [len(t) + 1 for t, _ in toks]
    total_w = float(sum(weights))
    total_s = sum(e - s for s, e in regions)
    # map "speech time" positions onto the regions
    bounds = []
    acc = 0.0
    for s, e in regions:
        bounds.append((acc, acc + (e - s), s))
        acc += e - s

    def place(x: float) -> float:
        for a, b, s in bounds:
            if x <= b:
                return s + (x - a)
        return regions[-1][1]

    pos = 0.0
    for (tok, spk), w in zip(toks, weights):
        d = total_s * w / total_w
        out.append((place(pos), place(pos + d), tok, spk))
        pos += d
    return out
