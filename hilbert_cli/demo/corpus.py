"""A synthetic interview corpus with known document-level labels, built offline with espeak-ng.

Each recording is a short interview: an interviewer (one fixed voice) asks open questions,
a participant (one of several distinct espeak-ng voices) answers at length, so the
participant speaks most (about three quarters of the speech). Each recording carries one
document-level label, ``affect`` in {negative, neutral, positive}, expressed two ways:

- **what is said**: most of the participant's sentences come from the label's sentence
  pool (written for this project), the rest from the neutral pool, so the text carries the
  label but not perfectly;
- **how it is said**: the participant's pitch, speaking rate and volume are shifted by the
  label (positive: higher, faster, louder; negative: lower, slower, quieter), with jitter per
  recording and per sentence, so prosody carries the label too.

Every participant records every class (balanced), so the voice never gives the label away;
``participant`` is the group column for grouped cross-validation. A second set of
participants (never in training) gives held-out recordings for ``hilbert score``.

Everything is deterministic for a seed. Only espeak-ng is needed (no sox, no network).
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import HilbertError
from ..parquet_io import atomic_write
from .sentences import BACKCHANNELS, NEGATIVE, NEUTRAL, POOLS, POSITIVE, PREAMBLES, QUESTIONS  # noqa: F401

#: bump when the rendering changes, so corpora built by an older version are rebuilt
CORPUS_VERSION = 3
ESPEAK_RATE = 22_050
CLASSES = ("negative", "neutral", "positive")
TASK = "affect"
GROUP_COLUMN = "participant"

#: prosody shift by label: (pitch 0-99, words per minute, amplitude 0-200)
PROSODY_SHIFT = {"positive": (8, 16, 16), "neutral": (0, 0, 0), "negative": (-7, -18, -16)}


@dataclass(frozen=True)
class Voice:
    participant: str
    espeak: str  # espeak-ng voice name, with +variant
    pitch: int  # base pitch, 0-99
    speed: int  # base rate, words per minute


#: participants in the training corpus (groups for grouped CV) and the held-out ones
TRAIN_VOICES = [
    Voice("p01", "en-us+f3", 58, 165),
    Voice("p02", "en-gb+m1", 36, 160),
    Voice("p03", "en-gb-scotland+f2", 62, 155),
    Voice("p04", "en-029+m4", 40, 170),
    Voice("p05", "en-us+f1", 55, 150),
    Voice("p06", "en+m7", 32, 160),
    Voice("p07", "en-gb-x-rp+f4", 60, 160),
    Voice("p08", "en-us-nyc+m2", 42, 165),
]
HELDOUT_VOICES = [
    Voice("h01", "en-us+f5", 57, 160),
    Voice("h02", "en-gb+m3", 38, 165),
    Voice("h03", "en-029+f2", 60, 155),
]
INTERVIEWER = Voice("interviewer", "en-us+m3", 45, 165)


@dataclass
class CorpusSpec:
    """What to build. The defaults give 36 training + 9 held-out recordings of ~50 s."""

    n_participants: int = 6  # training participants (groups), at most len(TRAIN_VOICES)
    per_class: int = 2  # recordings per participant per class
    n_heldout_participants: int = 3
    heldout_per_class: int = 1
    answers: tuple[int, int] = (4, 5)  # questions per interview (min, max)
    sentences_per_answer: tuple[int, int] = (2, 3)
    on_label: float = 0.5  # share of the participant's sentences drawn from the label's pool
    seed: int = 0
    #: 0..1: how strongly "negative" participants give shorter answers with longer pauses (the
    #: document-statistics benchmark); 0 = the label leaves length alone (the demo)
    length_effect: float = 0.0
    #: the interviewer talks more: each question comes after 2-3 sentences of context and the
    #: participant answers in one sentence (the participant-detection benchmark); False = the demo
    long_questions: bool = False

    def key(self) -> str:
        d = asdict(self)
        if not self.length_effect:
            del d["length_effect"]  # corpora built before the field existed stay valid
        if not self.long_questions:
            del d["long_questions"]
        return json.dumps({**d, "corpus_version": CORPUS_VERSION}, sort_keys=True)


@dataclass
class Utterance:
    speaker: str
    text: str
    pitch: int
    speed: int
    amplitude: int


@dataclass
class Script:
    recording_id: str
    split: str  # train | heldout
    participant: str
    label: str
    voice: Voice
    utterances: list[Utterance] = field(default_factory=list)
    pauses_s: list[float] = field(default_factory=list)  # silence before each utterance


@dataclass
class CorpusInfo:
    root: Path
    train_dir: Path
    heldout_dir: Path
    labels: Path
    heldout_labels: Path
    manifest: Path
    transcripts: Path  # transcripts/train and transcripts/heldout
    n_train: int
    n_heldout: int
    audio_s: float
    participant_share: float  # participant speech / all speech

    def describe(self) -> str:
        return (
            f"{self.n_train} training + {self.n_heldout} held-out recordings, "
            f"{self.audio_s / 60:.1f} min of audio, participant speaks "
            f"{100 * self.participant_share:.0f} % of the speech"
        )


def _clip(v: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, round(v))))


def _draw_sentences(rng: random.Random, label: str, n: int, on_label: float, used: set[str]) -> list[str]:
    out = []
    for _ in range(n):
        if label == "neutral":
            r = rng.random()
            pool = NEUTRAL if r < on_label else (POSITIVE if r < (1 + on_label) / 2 else NEGATIVE)
        else:
            pool = POOLS[label] if rng.random() < on_label else NEUTRAL
        choices = [s for s in pool if s not in used] or pool
        s = rng.choice(choices)
        used.add(s)
        out.append(s)
    return out


def make_script(rid: str, split: str, voice: Voice, label: str, spec: CorpusSpec, rng: random.Random) -> Script:
    dp, ds, da = PROSODY_SHIFT[label]
    # per-recording prosody: the label's shift plus jitter (so prosody is informative, not exact)
    base_pitch = voice.pitch + dp + rng.gauss(0, 5)
    base_speed = voice.speed + ds + rng.gauss(0, 10)
    base_amp = 100 + da + rng.gauss(0, 10)
    script = Script(rid, split, voice.participant, label, voice)
    used: set[str] = set()
    questions = rng.sample(QUESTIONS, rng.randint(*spec.answers))
    for qi, q in enumerate(questions):
        if qi > 0 and rng.random() < 0.4:  # interviewer backchannel before the next question
            q = f"{rng.choice(BACKCHANNELS)} {q}"
        if spec.long_questions:  # rng draws only here: long_questions = False changes nothing
            q = " ".join([*rng.sample(PREAMBLES, rng.randint(2, 3)), q])
        script.utterances.append(
            Utterance("interviewer", q, INTERVIEWER.pitch, INTERVIEWER.speed, 100)
        )
        script.pauses_s.append(round(rng.uniform(0.5, 0.9), 3))
        n_sentences, pause_scale = rng.randint(*spec.sentences_per_answer), 1.0
        if spec.long_questions:
            n_sentences = 1  # a brief answer
        if spec.length_effect and label == "negative":  # rng draws only here: length_effect = 0 changes nothing
            if rng.random() < spec.length_effect:
                n_sentences = max(1, n_sentences - 1)
            pause_scale = 1.0 + 2.0 * spec.length_effect * rng.uniform(0.5, 1.5)
        answer = _draw_sentences(rng, label, n_sentences, spec.on_label, used)
        # one utterance per sentence, each with a little prosodic variation
        for j, sentence in enumerate(answer):
            script.utterances.append(
                Utterance(
                    voice.participant,
                    sentence,
                    _clip(base_pitch + rng.gauss(0, 3), 5, 95),
                    _clip(base_speed + rng.gauss(0, 5), 90, 260),
                    _clip(base_amp + rng.gauss(0, 4), 30, 190),
                )
            )
            script.pauses_s.append(round(pause_scale * (rng.uniform(0.6, 1.0) if j == 0 else rng.uniform(0.25, 0.5)), 3))
    return script


def make_scripts(spec: CorpusSpec) -> list[Script]:
    if spec.n_participants > len(TRAIN_VOICES) or spec.n_heldout_participants > len(HELDOUT_VOICES):
        raise HilbertError(
            f"demo corpus: at most {len(TRAIN_VOICES)} training and {len(HELDOUT_VOICES)} held-out participants"
        )
    rng = random.Random(spec.seed)
    scripts = []
    for split, voices, per_class in (
        ("train", TRAIN_VOICES[: spec.n_participants], spec.per_class),
        ("heldout", HELDOUT_VOICES[: spec.n_heldout_participants], spec.heldout_per_class),
    ):
        for voice in voices:
            labels = [c for c in CLASSES for _ in range(per_class)]
            rng.shuffle(labels)
            for i, label in enumerate(labels, 1):
                rid = f"{voice.participant}/{voice.participant}_interview{i:02d}.wav"
                scripts.append(make_script(rid, split, voice, label, spec, rng))
    return scripts


def _espeak(text: str, voice: str, pitch: int, speed: int, amplitude: int) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise HilbertError(
            "the demo needs espeak-ng to synthesise its corpus: install it "
            "(Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)"
        )
    cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) < 44:
        raise HilbertError(f"espeak-ng failed for voice {voice}: {proc.stderr.decode(errors='replace').strip()}")
    import io

    import soundfile as sf

    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    if sr != ESPEAK_RATE:
        raise HilbertError(f"espeak-ng produced {sr} Hz audio, expected {ESPEAK_RATE}")
    return data


def _trim(x: np.ndarray, thr: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > thr)
    return x[idx[0] : idx[-1] + 1] if idx.size else x[:0]


def render(script: Script, path: Path) -> list[dict]:
    """Synthesise `script` to a 16 kHz mono 16-bit wav at `path` (atomic); return its turns."""
    import soundfile as sf
    from scipy.signal import resample_poly

    pieces: list[np.ndarray] = []
    turns: list[dict] = []
    t = 0.0
    for utt, pause in zip(script.utterances, script.pauses_s):
        voice = INTERVIEWER.espeak if utt.speaker == "interviewer" else script.voice.espeak
        wav = _trim(_espeak(utt.text, voice, utt.pitch, utt.speed, utt.amplitude))
        wav16 = resample_poly(wav, 320, 441).astype(np.float32)  # 22050 Hz -> 16000 Hz
        sil = np.zeros(int(round(pause * SAMPLE_RATE)), np.float32)
        pieces += [sil, wav16]
        t += len(sil) / SAMPLE_RATE
        dur = len(wav16) / SAMPLE_RATE
        turns.append({"speaker": utt.speaker, "start_s": round(t, 3), "end_s": round(t + dur, 3), "text": utt.text})
        t += dur
    pieces.append(np.zeros(int(0.5 * SAMPLE_RATE), np.float32))
    audio = np.clip(np.concatenate(pieces), -1.0, 1.0)
    atomic_write(path, lambda tmp: sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV"))
    return turns


def _write_labels(path: Path, scripts: list[Script]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["recording_id", TASK, GROUP_COLUMN])
            for s in scripts:
                w.writerow([s.recording_id, s.label, s.participant])

    atomic_write(path, write)


def build_corpus(out_dir: str | os.PathLike, spec: CorpusSpec | None = None, *, workers: int | None = None,
                 force: bool = False) -> CorpusInfo:
    """Build (or reuse, when already built with the same spec) the demo corpus under `out_dir`.

    Layout::

        out_dir/train/<participant>/<participant>_interviewNN.wav   training recordings
        out_dir/heldout/<participant>/...                            held-out recordings
        out_dir/labels.csv           recording_id, affect, participant (training)
        out_dir/heldout_labels.csv   the same for the held-out recordings (for checking scores)
        out_dir/manifest.json        spec, and per recording: label, prosody, true speaker turns
        out_dir/transcripts/{train,heldout}/<participant>/<name>.json   the true transcripts
                                     (speaker, start, end, text per utterance), usable with
                                     `hilbert prepare --transcripts` instead of ASR

    recording_id is relative to train/ or heldout/, as `hilbert prepare` names them.
    """
    spec = spec or CorpusSpec()
    root = Path(out_dir)
    manifest = root / "manifest.json"
    if not force and manifest.is_file():
        try:
            old = json.loads(manifest.read_text())
        except ValueError:
            old = {}
        if old.get("spec_key") == spec.key() and all(
            (root / r["split"] / r["recording_id"]).is_file() and transcript_path(root, r["split"], r["recording_id"]).is_file()
            for r in old.get("recordings", [])
        ):
            return _info(root, old)
    scripts = make_scripts(spec)
    root.mkdir(parents=True, exist_ok=True)

    def job(s: Script) -> dict:
        turns = render(s, root / s.split / s.recording_id)
        tr = transcript_path(root, s.split, s.recording_id)
        text = json.dumps({"segments": [{"speaker": t["speaker"], "start": t["start_s"], "end": t["end_s"],
                                         "text": t["text"]} for t in turns]}, indent=1)
        atomic_write(tr, lambda tmp: Path(tmp).write_text(text))
        return {
            "recording_id": s.recording_id,
            "split": s.split,
            "participant": s.participant,
            "label": s.label,
            "voice": s.voice.espeak,
            "duration_s": round(turns[-1]["end_s"] + 0.5, 3),
            "turns": turns,
        }

    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        records = list(pool.map(job, scripts))
    _write_labels(root / "labels.csv", [s for s in scripts if s.split == "train"])
    _write_labels(root / "heldout_labels.csv", [s for s in scripts if s.split == "heldout"])
    doc = {"spec": asdict(spec), "spec_key": spec.key(), "task": TASK, "classes": list(CLASSES),
           "group_column": GROUP_COLUMN, "recordings": records}
    atomic_write(manifest, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
    return _info(root, doc)


def transcript_path(root: Path, split: str, recording_id: str) -> Path:
    return Path(root) / "transcripts" / split / Path(recording_id).with_suffix(".json")


def _info(root: Path, doc: dict) -> CorpusInfo:
    recs = doc["recordings"]
    speech = sum(t["end_s"] - t["start_s"] for r in recs for t in r["turns"])
    part = sum(t["end_s"] - t["start_s"] for r in recs for t in r["turns"] if t["speaker"] != "interviewer")
    return CorpusInfo(
        root=root,
        train_dir=root / "train",
        heldout_dir=root / "heldout",
        labels=root / "labels.csv",
        heldout_labels=root / "heldout_labels.csv",
        manifest=root / "manifest.json",
        transcripts=root / "transcripts",
        n_train=sum(r["split"] == "train" for r in recs),
        n_heldout=sum(r["split"] == "heldout" for r in recs),
        audio_s=sum(r["duration_s"] for r in recs),
        participant_share=part / speech if speech else 0.0,
    )
