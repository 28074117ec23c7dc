"""Bad options and bad metadata are one line naming the option (or file) and the problem, from one
formatter (contracts.base.validation_line) wherever pydantic finds the problem."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from hilbert_cli.contracts.base import validation_line
from hilbert_cli.errors import ConfigError
from fixtures_prepare import run_main


class _Opts(BaseModel):
    size: int = 1

    @field_validator("size")
    @classmethod
    def _small(cls, v: int) -> int:
        if v > 3:
            raise ValueError(f"size {v} is\ntoo large")
        return v


def _error(**kw) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Opts(**kw)
    return info.value


def test_validation_line_is_one_line_with_the_key_path():
    assert validation_line(_error(size=9)) == "size: size 9 is too large"  # no "Value error, ", no newline
    assert validation_line(_error(size=9), "options") == "options.size: size 9 is too large"
    assert validation_line(_error(size="x")).startswith("size: Input should be a valid integer")


def test_api_and_cli_option_errors_name_the_option(tmp_path, capfd):
    from hilbert_cli import run_embed

    (tmp_path / "prepare" / "words").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        run_embed(tmp_path, {"segment": {"min_words": 50, "max_words": 10}})
    assert str(info.value) == "embed option segment: min_words (50) > max_words (10)"
    with pytest.raises(ConfigError) as info:
        run_embed(tmp_path, {"audio_batch_size": "many"})
    assert str(info.value).startswith("embed option audio_batch_size: Input should be a valid integer")
    assert run_main(["embed", tmp_path, "--min-words", "50", "--max-words", "10"]) != 0
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "min_words" in line]
    assert [line.strip() for line in lines] == ["error: segmentation options: min_words (50) > max_words (10)"], err
    assert "Value error" not in err
