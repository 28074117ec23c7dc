"""The README's test command is exactly what CI runs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_setup_and_test_commands():
    blocks = _readme_commands()
    assert len(blocks) >= 2
    assert "scripts/setup.sh" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command():
    test_cmd = _readme_commands()[1].strip().splitlines()[-1].strip()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci], (test_cmd, ci)
