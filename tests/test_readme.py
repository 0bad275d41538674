"""The README's set-up commands are the ones CI and users actually run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    return re.findall(r"^python3 -m venv \.venv && .*$", text, flags=re.M)


def test_ci_runs_the_readme_test_command():
    readme = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = _commands((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    tests = [c for c in readme if "pytest" in c]
    assert len(tests) == 1, readme
    assert ci == tests


def test_readme_main_job_command_trains_by_default():
    readme = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    train = [c for c in readme if "pytest" not in c]
    assert len(train) == 1
    assert train[0].endswith(".venv/bin/resnetv2 train")
