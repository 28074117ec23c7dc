"""`--speaker participant`: the participant of an interview is the speaker who is not the interviewer,
and the interviewer is the speaker who asks.

`--speaker dominant` (most speech) fails when the interviewer talks more than the participant
(long multi-sentence prompts, brief answers). Asking is a better cue than talking: per speaker,
from the words and their turns (a turn = a run of one speaker's words), we measure

- question share: the share of the speaker's turns that ask - a sentence of the turn ends in "?"
  (ASR and most transcripts punctuate); when the whole recording has no sentence punctuation, a
  turn asks when it starts (after "okay", "I see", ...) with an English question word, an
  auxiliary before its subject or a prompt ("tell me", "describe"), or holds an asking word pair
  anywhere ("how have", "do you", "is there");
- prompt match (with --prompts FILE): TF-IDF cosine (scikit-learn) between the speaker's words
  and the interview prompts - the interviewer reads them out;
- mean turn length in words, who speaks first, and how often a speaker takes the floor after the
  other stopped and a long pause followed (`LONG_PAUSE_S`).

The interviewer is decided by the first cue that separates the speakers: the prompt match
(when prompts are given), else the question share, else turn-taking (a vote of: speaks first,
takes the floor after long pauses most often, shortest mean turn). The participant is then the
speaker with the most speech among the others (so with three or more speakers, a second
interviewer or a relative who speaks little is not chosen) - unless that speaker has under
`MIN_PARTICIPANT_SHARE` of the speech (a diarization that merged the participant into the
interviewer): then the speaker with the most speech. One speaker: that speaker.
Every figure and the cue that decided go to the words table's metadata
(`participant_detection`), so a user can see why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: a pause (s) after one speaker stops that counts as "long" when the other then takes the floor
LONG_PAUSE_S = 1.0
#: the question share must reach this, and beat the next speaker by QUESTION_MARGIN, to decide
MIN_QUESTION_SHARE = 0.2
QUESTION_MARGIN = 0.15
#: the prompt match (cosine) must beat the next speaker by this to decide
PROMPT_MARGIN = 0.05
#: a participant with less of the speech than this is not believed: the diarization has most
#: likely folded the participant's answers into the asking speaker (leaving the other "speaker"
#: only backchannels), so the speaker with the most speech is taken instead
MIN_PARTICIPANT_SHARE = 0.05

_WH = frozenset("what how why when where who whom whose which".split())
_AUX = frozenset("do does did is are was were am can could would will should shall have has had may might".split())
_SUBJECT = frozenset("you your i we they he she it there that this anyone anything someone somebody the a an any "
                     "things everything".split())
_PROMPT = frozenset({("tell", "me"), ("tell", "us"), ("describe",)})
#: word pairs that ask anywhere in a turn (after a preamble of statements): "... how have you",
#: "can you", "is there", "tell me", "what happens"
_ASKING_PAIRS = frozenset({(a, b) for a in _AUX for b in ("you", "your", "there")}
                          | {(w, a) for w in _WH for a in _AUX}
                          | {("tell", "me"), ("tell", "us"), ("what", "happens"), ("what", "happened")})
_MARKERS = frozenset("okay ok right so and well alright now thanks mm hm mhm mmhm uh um er yes yeah good great".split())
_MARKER_PAIRS = frozenset({("i", "see"), ("go", "on"), ("thank", "you")})
_SENTENCE_END = re.compile(r"[.?!]")
_TOKEN = re.compile(r"[a-z']+")


@dataclass
class Turn:
    speaker: str
    start_s: float
    end_s: float
    words: list[str]


def word_turns(starts: Sequence[float], ends: Sequence[float], texts: Sequence[str], speakers: Sequence[str],
               *, skip: frozenset[str] = frozenset()) -> list[Turn]:
    """Runs of one speaker's words, in time order (words of a `skip` speaker or without text are left out)."""
    order = np.argsort(np.asarray(starts, dtype=float), kind="stable")
    out: list[Turn] = []
    for i in order:
        k, w = speakers[i], (texts[i] or "").strip()
        if not k or k in skip or not w:
            continue
        if out and out[-1].speaker == k:
            out[-1].end_s = max(out[-1].end_s, float(ends[i]))
            out[-1].words.append(w)
        else:
            out.append(Turn(k, float(starts[i]), float(ends[i]), [w]))
    return out


def is_punctuated(turns: Sequence[Turn]) -> bool:
    """Whether the transcript marks sentence ends at all (else the word-order fallback applies)."""
    return any(_SENTENCE_END.search(w) for t in turns for w in t.words)


def asks_punctuated(turn: Turn) -> bool:
    """A sentence of the turn ends in "?" (a quote or bracket may follow it)."""
    return any(w.rstrip("\"')]»”’").endswith("?") for w in turn.words)


def _tokens(words: Sequence[str]) -> list[str]:
    return [t for w in words for t in _TOKEN.findall(w.lower().replace("’", "'"))]


def asks_by_word_order(turn: Turn) -> bool:
    """English question cues, for unpunctuated transcripts: the turn starts (after discourse
    markers: "okay", "I see", "thank you") with a question word, an auxiliary before a subject or
    a prompt; or it holds an asking pair anywhere ("how have", "do you", "is there", "tell me")."""
    tok = _tokens(turn.words)
    i = 0
    while i < len(tok):
        if i + 1 < len(tok) and (tok[i], tok[i + 1]) in _MARKER_PAIRS:
            i += 2
        elif tok[i] in _MARKERS:
            i += 1
        else:
            break
    rest = tok[i:]
    if not rest:
        return False
    if rest[0] in _WH or (rest[0],) in _PROMPT or tuple(rest[:2]) in _PROMPT:
        return True
    if rest[0] in _AUX and len(rest) > 1 and rest[1] in _SUBJECT:
        return True
    return any(pair in _ASKING_PAIRS for pair in zip(tok, tok[1:]))


def prompt_match(docs: dict[str, str], prompts: Sequence[str]) -> dict[str, float]:
    """TF-IDF cosine between each speaker's words and the prompts (0 when nothing is shared)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    names = list(docs)
    prompt_doc = " ".join(prompts)
    try:
        m = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform([prompt_doc, *docs.values()])
    except ValueError:  # only stop words anywhere: no evidence
        return {k: 0.0 for k in names}
    sims = cosine_similarity(m[0], m[1:]).ravel()
    return {k: round(float(s), 4) for k, s in zip(names, sims)}


def _separates(values: dict[str, float], floor: float, margin: float) -> str | None:
    """The speaker whose value is highest, when it reaches `floor` and beats the next by `margin`."""
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked or ranked[0][1] < floor:
        return None
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < margin:
        return None
    return ranked[0][0]


def _turn_taking(stats: dict[str, dict]) -> str:
    """Vote of three weak cues: speaks first, most floor-takings after long pauses, shortest turns;
    a tie goes to the first speaker (interviewers open; shorter turns fail when the interviewer
    talks more, the case this module exists for)."""
    votes = {k: 0 for k in stats}
    for k, s in stats.items():
        votes[k] += int(s["speaks_first"])
    takes = {k: s["after_long_pause"] for k, s in stats.items()}
    top = max(takes.values())
    if top > 0 and list(takes.values()).count(top) == 1:
        votes[max(takes, key=takes.get)] += 1
    lengths = {k: s["mean_turn_words"] for k, s in stats.items()}
    votes[min(lengths, key=lambda k: (lengths[k], k))] += 1
    return sorted(stats, key=lambda k: (-votes[k], not stats[k]["speaks_first"], stats[k]["mean_turn_words"], k))[0]


def speaker_stats(turns: Sequence[Turn], speech: dict[str, float], punctuated: bool) -> dict[str, dict]:
    """Per speaker: speech, turns, question share, mean turn length, first speaker, floor-takings."""
    asks = asks_punctuated if punctuated else asks_by_word_order
    stats = {k: {"speech_s": round(float(v), 3), "turns": 0, "question_turns": 0, "words": 0,
                 "speaks_first": False, "after_long_pause": 0} for k, v in speech.items()}
    for i, t in enumerate(turns):
        s = stats.get(t.speaker)
        if s is None:
            continue
        s["turns"] += 1
        s["words"] += len(t.words)
        s["question_turns"] += int(asks(t))
        if i > 0 and turns[i - 1].speaker != t.speaker and t.start_s - turns[i - 1].end_s >= LONG_PAUSE_S:
            s["after_long_pause"] += 1
    first = next((t.speaker for t in turns if t.speaker in stats), None)
    for k, s in stats.items():
        s["speaks_first"] = k == first
        s["question_share"] = round(s["question_turns"] / s["turns"], 4) if s["turns"] else 0.0
        s["mean_turn_words"] = round(s["words"] / s["turns"], 2) if s["turns"] else 0.0
    return stats


def detect_participant(turns: Sequence[Turn], speech: dict[str, float],
                       prompts: Sequence[str] = ()) -> tuple[str | None, dict]:
    """(participant label or None when nobody speaks, the evidence recorded in the metadata)."""
    punctuated = is_punctuated(turns)
    stats = speaker_stats(turns, speech, punctuated)
    evidence: dict = {"participant": None, "interviewer": None, "decided_by": None,
                      "question_cue": "punctuation" if punctuated else "word order (no punctuation)",
                      "long_pause_s": LONG_PAUSE_S, "prompts": len(prompts), "speakers": stats}
    if prompts:
        docs = {k: " ".join(w for t in turns if t.speaker == k for w in t.words) for k in stats}
        for k, v in prompt_match(docs, prompts).items():
            stats[k]["prompt_match"] = v
    if not stats:
        evidence["decided_by"] = "no speech"
        return None, evidence
    if len(stats) == 1:
        only = next(iter(stats))
        evidence.update(participant=only, decided_by="one speaker")
        return only, evidence
    interviewer, how = None, None
    if prompts:
        interviewer = _separates({k: s["prompt_match"] for k, s in stats.items()}, 1e-9, PROMPT_MARGIN)
        how = "prompts" if interviewer else None
    if interviewer is None:
        interviewer = _separates({k: s["question_share"] for k, s in stats.items()}, MIN_QUESTION_SHARE,
                                 QUESTION_MARGIN)
        how = "questions" if interviewer else None
    if interviewer is None:
        interviewer, how = _turn_taking(stats), "turn-taking"
    others = sorted((k for k in stats if k != interviewer), key=lambda k: (-speech[k], k))
    chosen, total = others[0], sum(speech.values())
    if total > 0 and speech[chosen] / total < MIN_PARTICIPANT_SHARE:
        chosen = max(speech, key=lambda k: (speech[k], k == interviewer))
        how = f"{how}, then most speech (the other speakers have under {MIN_PARTICIPANT_SHARE:.0%} of it)"
    evidence.update(participant=chosen, interviewer=interviewer, decided_by=how)
    return chosen, evidence


def read_prompts(path) -> tuple[str, ...]:
    """The interview prompts of `--prompts FILE`: one per line (UTF-8; blank lines and lines
    starting with # are skipped). A missing, unreadable or empty file is a one-line ConfigError."""
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"--prompts {p}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--prompts {p}: a directory, not a file of prompts") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--prompts {p}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"--prompts {p}: cannot read ({exc.strerror or exc})") from None
    lines = tuple(s.strip() for s in text.splitlines())
    prompts = tuple(s for s in lines if s and not s.startswith("#"))
    if not prompts:
        raise ConfigError(f"--prompts {p}: no prompts (one per line; the file is empty)")
    return prompts
