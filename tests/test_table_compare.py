"""The cross-process table comparison lets float32 noise in ASR scores pass and nothing else."""
import pyarrow as pa
import pytest

from table_compare import assert_same_table


def _words(words=("ja", "nein"), logprob=(-4.736539, -0.5), start=(0.0, 0.4)):
    return pa.table({"word": list(words), "start_s": pa.array(start, pa.float64()),
                     "avg_logprob": pa.array(logprob, pa.float32())})


def test_float32_noise_in_a_score_passes():
    assert_same_table(_words(), _words(logprob=(-4.736545, -0.5)))


@pytest.mark.parametrize("other", [
    _words(logprob=(-4.7, -0.5)),  # a score that really moved
    _words(words=("ja", "nie")),  # a different word
    _words(start=(0.0, 0.42)),  # a different time: timings are exact
    _words(words=("ja",), logprob=(-4.736539,), start=(0.0,)),  # a row lost
])
def test_anything_else_fails(other):
    with pytest.raises(AssertionError):
        assert_same_table(_words(), other)
