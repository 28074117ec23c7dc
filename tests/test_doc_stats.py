"""Document statistics against values computed by hand on a small words table."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from hilbert_cli.embed.doc_stats import FEATURE_NAMES, DocStats, document_stats, feature_vector


def _words(rows):
    speaker, target, start, end, word = zip(*rows)
    return pa.table({"start_s": list(start), "end_s": list(end), "word": list(word),
                     "speaker": list(speaker), "is_target": list(target)})


# participant P (target) and interviewer I; listed out of time order on purpose
ROWS = [
    ("I", False, 2.0, 2.3, "how"), ("I", False, 2.4, 2.6, "so"),
    ("P", True, 0.0, 0.3, "I"), ("P", True, 0.4, 0.6, "am"), ("P", True, 1.0, 1.5, "fine"),
    ("P", True, 3.0, 3.4, "well"), ("P", True, 4.0, 4.5, "okay"),
    ("I", False, 5.0, 5.2, "ok"),
    ("P", True, 6.0, 6.0, " "),  # an empty word: not speech
]


def test_statistics_match_hand_computed_values():
    s = document_stats(_words(ROWS), n_segments=4)
    # target turns: [0.0, 1.5] (3 words) and [3.0, 4.5] (2 words)
    assert s.speaking_time_s == pytest.approx(3.0)
    assert s.n_words == 5 and s.n_segments == 4
    assert s.words_per_minute == pytest.approx(100.0)
    # pauses >= 0.25 s inside target turns: 0.6->1.0 (0.4) and 3.4->4.0 (0.6); the 0.1 gap is none,
    # and the 1.5->3.0 gap spans the interviewer's turn, so it is turn-taking, not a pause
    assert s.pause_count == 2
    assert s.pause_mean_s == pytest.approx(0.5)
    assert s.pause_p90_s == pytest.approx(0.58)
    assert s.turn_count == 2
    assert s.turn_mean_s == pytest.approx(1.5)
    assert s.turn_mean_words == pytest.approx(2.5)
    # interviewer: [2.0, 2.6] and [5.0, 5.2]
    assert s.other_speaking_time_s == pytest.approx(0.8)
    assert s.other_n_words == 3
    assert s.share_of_speech == pytest.approx(3.0 / 3.8)


def test_no_speaker_columns_means_one_target_speaker():
    t = _words(ROWS).drop_columns(["speaker", "is_target"])
    s = document_stats(t)
    # one turn from 0.0 to 5.2 with every non-empty word
    assert s.turn_count == 1 and s.n_words == 8 and s.other_n_words == 0
    assert s.speaking_time_s == pytest.approx(5.2)
    assert s.share_of_speech == pytest.approx(1.0)


def test_empty_table_and_round_trip_through_metadata():
    empty = _words(ROWS).slice(0, 0)
    assert document_stats(empty, n_segments=0) == DocStats()
    s = document_stats(_words(ROWS), n_segments=4)
    assert DocStats.from_dict(s.to_dict()) == s
    # a key from a newer version is ignored, a missing one is 0
    assert DocStats.from_dict({"n_words": 3, "future_key": 1.0}) == DocStats(n_words=3)


def test_feature_vector_logs_counts_and_keeps_shares():
    s = document_stats(_words(ROWS), n_segments=4)
    v = feature_vector(s)
    assert v.shape == (len(FEATURE_NAMES),) and v.dtype == np.float32
    named = dict(zip(FEATURE_NAMES, v))
    assert named["n_words"] == pytest.approx(math.log1p(5))
    assert named["share_of_speech"] == pytest.approx(3.0 / 3.8)
