"""`--speaker participant`: the interviewer is the speaker who asks (or matches the prompts), the
participant is the other one - also when the interviewer talks more, where `dominant` fails."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import pytest

from hilbert_cli.errors import ConfigError
from hilbert_cli.prepare.assign import choose_target
from hilbert_cli.prepare.options import PrepareOptions
from hilbert_cli.prepare.participant import read_prompts

from fixtures_prepare import run_main as _main, tiny_whisper_dir  # noqa: F401

#: the interviewer asks long multi-sentence questions, the participant answers briefly
INTERVIEW = [
    ("INT", "Thank you for coming in today. We ask everyone the same questions. How have you been sleeping?"),
    ("PAR", "Not very well."),
    ("INT", "Many people say the evenings are the hardest part. There is no right answer here. "
            "What do you usually do after dinner?"),
    ("PAR", "I watch television."),
    ("INT", "I see. Take your time with this next one and give an example if you can. "
            "Can you tell me about your family?"),
    ("PAR", "We are close."),
]


def words_of(script, *, gap: float = 0.6):
    """(turns, words) of a script of (speaker, text): one word every 0.3 s, `gap` s between turns."""
    starts, ends, texts, speakers, turns = [], [], [], [], []
    t = 0.0
    for spk, text in script:
        t0 = t
        for w in text.split():
            starts.append(t)
            ends.append(t + 0.25)
            texts.append(" " + w)
            speakers.append(spk)
            t += 0.3
        turns.append((t0, t - 0.05, spk))
        t += gap
    return turns, (starts, ends, texts, speakers)


def unpunctuated(script):
    return [(k, re.sub(r"[^\w\s']", "", text).lower()) for k, text in script]


def test_participant_is_not_the_interviewer_even_when_the_interviewer_talks_more():
    turns, words = words_of(INTERVIEW)
    assert choose_target(turns, "dominant")[:2] == ({"INT"}, "INT")  # dominant takes the interviewer
    targets, label, ev = choose_target(turns, "participant", words)
    assert (targets, label) == ({"PAR"}, "PAR")
    assert ev["interviewer"] == "INT" and ev["decided_by"] == "questions" and ev["question_cue"] == "punctuation"
    s = ev["speakers"]
    assert s["INT"]["question_share"] == 1.0 and s["PAR"]["question_share"] == 0.0
    assert s["INT"]["speech_s"] > s["PAR"]["speech_s"] and s["INT"]["mean_turn_words"] > s["PAR"]["mean_turn_words"]
    assert s["INT"]["speaks_first"] and not s["PAR"]["speaks_first"]
    assert s["INT"]["turns"] == 3 and "prompt_match" not in s["INT"]


def test_unpunctuated_transcript_falls_back_to_question_word_order():
    turns, words = words_of(unpunctuated(INTERVIEW))
    assert not any("?" in w or "." in w for w in words[2])
    targets, label, ev = choose_target(turns, "participant", words)
    assert label == "PAR" and ev["decided_by"] == "questions"
    assert ev["question_cue"] == "word order (no punctuation)"
    # "i see can you tell me ..." asks (after a discourse marker); "we are close" does not
    assert ev["speakers"]["INT"]["question_share"] == 1.0 and ev["speakers"]["PAR"]["question_share"] == 0.0


def test_prompt_match_decides_over_questions(tmp_path):
    # the interviewer reads prompts as statements; the participant asks back (more '?' turns)
    script = [
        ("INT", "Tell me about a typical day at home."),
        ("PAR", "A typical day? Well, I get up early and I work."),
        ("INT", "Describe how things have been with your family recently."),
        ("PAR", "Recently? Fine, we are busy with school."),
        ("INT", "Tell me about the last holiday you had."),
        ("PAR", "Do you mean last summer? We went to the lake."),
    ]
    turns, words = words_of(script)
    assert choose_target(turns, "participant", words)[1] == "INT"  # questions alone mislead here
    f = tmp_path / "prompts.txt"
    f.write_text("# interview schedule\nCan you tell me about a typical day at home?\n\n"
                 "How have things been with your family recently?\nTell me about the last holiday you had.\n")
    prompts = read_prompts(f)
    assert len(prompts) == 3
    targets, label, ev = choose_target(turns, "participant", words, prompts)
    assert label == "PAR" and ev["interviewer"] == "INT" and ev["decided_by"] == "prompts" and ev["prompts"] == 3
    assert ev["speakers"]["INT"]["prompt_match"] > ev["speakers"]["PAR"]["prompt_match"] + 0.05


def test_without_questions_turn_taking_decides_and_a_tie_goes_to_the_first_speaker():
    script = [  # statements only; the interviewer opens and has the longer turns
        ("INT", "Thank you for coming in today. We will start with your sleep and then talk about work."),
        ("PAR", "Sure, that is fine."),
        ("INT", "Now let us move on to your family and the people you live with at home."),
        ("PAR", "Okay, we are close."),
    ]
    turns, words = words_of(script)
    _, label, ev = choose_target(turns, "participant", words)
    assert ev["decided_by"] == "turn-taking" and ev["interviewer"] == "INT" and label == "PAR"
    turns, words = words_of(script[1:])  # now PAR opens (and has the shorter turns)
    _, label, ev = choose_target(turns, "participant", words)
    assert ev["decided_by"] == "turn-taking" and ev["interviewer"] == "PAR"


def test_a_speaker_with_only_backchannels_is_not_believed_to_be_the_participant():
    # a diarization that merged the participant into the interviewer: one asking speaker holds the
    # answers too; the other "speaker" says only "okay" (under 5 % of the speech)
    answer = "I have been sleeping badly and work has been very stressful for most of the year. " * 3
    script = [("S0", f"How have you been sleeping? {answer}"), ("S1", "Okay."),
              ("S0", f"What do you do on weekends? {answer}")]
    turns, words = words_of(script)
    _, label, ev = choose_target(turns, "participant", words)
    assert ev["interviewer"] == "S0" and label == "S0" and "most speech" in ev["decided_by"]


def test_one_speaker_and_no_speech():
    turns, words = words_of([("SPEAKER_00", "I have been fine. How are you?")])
    assert choose_target(turns, "participant", words)[:2] == ({"SPEAKER_00"}, "SPEAKER_00")
    assert choose_target(turns, "participant", words)[2]["decided_by"] == "one speaker"
    assert choose_target([], "participant", ((), (), (), ()))[:2] == (set(), None)


def test_three_speakers_participant_is_the_non_interviewer_with_most_speech():
    script = INTERVIEW + [("REL", "Yes."), ("PAR", "My sister helps us a lot with the children these days.")]
    turns, words = words_of(script)
    assert choose_target(turns, "participant", words)[1] == "PAR"


def test_prompts_options_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="only with speaker participant"):
        PrepareOptions.build(speaker="dominant", prompts=("How are you?",))
    opts = PrepareOptions(speaker="participant", prompts=(" How are you? ", ""))
    assert opts.prompts == ("How are you?",)
    assert "prompts" in opts.hashed() and "prompts" not in PrepareOptions(speaker="participant").hashed()
    with pytest.raises(ConfigError, match=r"--prompts .*nope\.txt: no such file"):
        read_prompts(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n# only a comment\n")
    with pytest.raises(ConfigError, match=r"empty\.txt: no prompts"):
        read_prompts(tmp_path / "empty.txt")


def test_long_questions_corpus_spec_makes_the_interviewer_talk_more():
    from hilbert_cli.demo.corpus import CorpusSpec, make_scripts

    spec = CorpusSpec(n_participants=2, per_class=1, n_heldout_participants=1)
    assert "long_questions" not in spec.key()  # the demo's corpus is not rebuilt
    long = make_scripts(replace(spec, long_questions=True))
    words = lambda s, who: sum(len(u.text.split()) for u in s.utterances if (u.speaker == "interviewer") == who)
    assert all(words(s, True) > words(s, False) for s in long)
    assert all(len(re.findall(r"[.?!]", u.text)) >= 3 for s in long for u in s.utterances if u.speaker == "interviewer")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_cli_participant_with_prompts_on_a_demo_recording(tmp_path, tiny_whisper_dir):  # noqa: F811
    from hilbert_cli.demo.corpus import QUESTIONS, CorpusSpec, build_corpus
    from hilbert_cli.parquet_io import read_metadata, read_table

    spec = CorpusSpec(n_participants=1, per_class=1, n_heldout_participants=0, answers=(2, 2), long_questions=True)
    info = build_corpus(tmp_path / "corpus", spec, workers=2)
    rec = json.loads(info.manifest.read_text())["recordings"][0]
    audio, tr = tmp_path / "audio", tmp_path / "transcripts"
    audio.mkdir(), tr.mkdir()
    name = rec["recording_id"].split("/")[-1]
    shutil.copy(info.train_dir / rec["recording_id"], audio / name)
    shutil.copy(info.transcripts / "train" / rec["recording_id"].replace(".wav", ".json"), tr / name.replace(".wav", ".json"))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(QUESTIONS) + "\n")
    work = tmp_path / "work"
    base = ["prepare", audio, "--out", work, "--transcripts", tr, "--asr-model", tiny_whisper_dir, "-q"]
    assert _main([*base, "--speaker", "participant", "--prompts", tmp_path / "missing.txt"]) == 2
    assert _main([*base, "--speaker", "participant", "--prompts", prompts]) == 0
    words = work / "prepare" / "words" / f"{name}.parquet"
    meta = read_metadata(words)
    det = meta["participant_detection"]
    assert meta["target_speaker"] == rec["participant"] == det["participant"]
    assert det["interviewer"] == "interviewer" and det["decided_by"] == "prompts"
    s = det["speakers"]
    assert s["interviewer"]["speech_s"] > s[rec["participant"]]["speech_s"]  # dominant would be wrong here
    assert s["interviewer"]["prompt_match"] > s[rec["participant"]]["prompt_match"]
    assert s["interviewer"]["question_share"] > s[rec["participant"]]["question_share"]
    t = read_table(words).to_pylist()
    assert t and all(r["is_target"] == (r["speaker"] == rec["participant"]) for r in t)
