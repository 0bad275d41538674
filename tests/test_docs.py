"""The documentation is self-contained: every fact it cites lives in the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Built by concatenation so this file does not match itself.
OUTSIDE = [name + ".md" for name in ("RELIABILITY", "REFERENCES", "ARCHITECTURE")]
MACHINE_PATHS = ["/" + "work/", "../" + "shared", "shared/" + "docs"]


def _text_files():
    for folder in ("src", "tests", "docs", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".yaml", ".sh", ".txt") and path.is_file():
                yield path
    yield ROOT / "README.md"


def test_no_reference_to_documents_outside_the_repository():
    offenders = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [
            f"{path.relative_to(ROOT)}: {n}" for n in OUTSIDE + MACHINE_PATHS if n in text
        ]
    assert offenders == []


@pytest.mark.parametrize("page", ["reliability.md", "references.md"])
def test_the_cited_facts_live_in_the_docs(page):
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert len(text) > 2000
    if page == "references.md":
        assert "10,327,706" in text and "arXiv:1603.05027" in text  # ResNet-1001, He et al.
    else:
        assert all(f"\n{n}. " in text for n in range(1, 8))  # promises 1-7


def test_relative_links_in_the_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if not (page.parent / target).is_file():
                broken.append(f"{page.name} -> {target}")
    assert broken == []


def test_readme_states_how_long_the_test_suite_takes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"suite took \d+ s on two CPU cores", readme)


def test_the_documented_metrics_csv_columns_are_the_written_ones():
    """docs/evaluation.md lists metrics.csv's columns exactly as training writes them
    (``elapsed`` included)."""
    import re

    from resnetv2.engine.callbacks import METRIC_COLUMNS

    text = " ".join((ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8").split())
    listed = re.search(r"Reads `RUN/metrics.csv` \(columns `([^`]+)`", text)
    assert listed, "docs/evaluation.md no longer lists the columns"
    assert [c.strip() for c in listed.group(1).split(",")] == list(METRIC_COLUMNS)
