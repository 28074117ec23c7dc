"""The [compare] section of a recipe is typed (evaluation/config.py CompareSection), validated with
the rest of the recipe, and dumped as written (summary.json and a model's config.json keep the
user's table, not every default)."""

from __future__ import annotations

import pytest

from hilbert_cli.errors import ConfigError
from hilbert_cli.evaluation.config import CompareSection
from hilbert_cli.recipes import load_recipe

BASE = """
name = "cmp"
variants = ["hilbert", "transfer"]

[data.synthetic]
n_recordings = 20

[[tasks]]
name = "a"
signal = "audio"
"""


def test_compare_section_is_typed_and_dumped_as_written(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text(BASE + '\n[compare.sweep]\nlosses = ["mi"]\nvalues = [0, 0.3]\n\n[compare.stats]\nn_boot = 300\n')
    rec = load_recipe(p)
    assert isinstance(rec.compare, CompareSection)
    assert rec.compare.sweep.values == [0.0, 0.3] and rec.compare.stats.n_boot == 300
    assert rec.compare.ablation.enabled is True  # a default the file does not set
    dumped = rec.model_dump(mode="json")["compare"]
    assert dumped == {"sweep": {"losses": ["mi"], "values": [0, 0.3]}, "stats": {"n_boot": 300}}
    assert rec.model_copy(update={"name": "other"}).model_dump(mode="json")["compare"] == dumped
    assert load_recipe(p, overrides=["compare.stats.n_boot=500"]).compare.stats.n_boot == 500
    p.write_text(BASE)
    assert load_recipe(p).compare is None and load_recipe(p).model_dump(mode="json")["compare"] is None


@pytest.mark.parametrize("table, key", [("[compare.sweep]\nvaluez = [1]", "compare.sweep.valuez: unknown key"),
                                        ("[compare]\nnmae = 'x'", "compare.nmae: unknown key"),
                                        ("[compare.stats]\nn_boot = 5", "compare.stats.n_boot: ")])
def test_a_bad_compare_key_is_one_line_naming_the_file_and_the_key(tmp_path, table, key):
    p = tmp_path / "bad.toml"
    p.write_text(BASE + "\n" + table + "\n")
    with pytest.raises(ConfigError) as ei:
        load_recipe(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ") and key in msg and "\n" not in msg, msg
