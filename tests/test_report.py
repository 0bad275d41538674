"""``resnetv2 report``: one self-contained HTML page per run or sweep, checked as HTML and
in a real headless browser (Debian's chromium; skipped where it is absent)."""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from PIL import Image

from resnetv2.cli import main

REFERENCE_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "background"}
FOREIGN_TAGS = {"script", "link", "iframe", "object", "embed", "frame", "base", "audio", "video"}


class _Page(HTMLParser):
    """Every tag, every image source and every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.references: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in REFERENCE_ATTRIBUTES or name.startswith("on"):
                self.references.append((tag, name, value or ""))


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch digits run (not yet evaluated) whose results.json records training
    compute."""
    root = tmp_path_factory.mktemp("report")
    assert main(["train", "--epochs", "1", "--out", str(root / "run"), "--quiet"]) == 0
    results = json.loads((root / "run" / "results.json").read_text())
    results["train_pflop"] = 0.00123
    (root / "run" / "results.json").write_text(json.dumps(results))
    return root / "run"


def test_one_page_with_everything_embedded(run, capsys):
    assert main(["report", str(run), "-q"]) == 0
    out = capsys.readouterr().out
    page_path = run / "report.html"
    assert f"report written to {page_path} (1 run)" in out
    assert "evaluated: run" in out and (run / "eval" / "mistakes.png").is_file()
    page = _parse(page_path)
    assert not (set(page.tags) & FOREIGN_TAGS) and page.references == []
    text = page_path.read_text(encoding="utf-8")
    assert "@import" not in text and "url(" not in text
    # Curves, confusion matrix and mistakes, each a PNG inside the page.
    assert len(page.images) == 3
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
            assert image.format == "PNG" and image.size[0] >= 256
    for expected in (
        "The run",
        "digits (the recipe's description: Small pre-activation ResNet",
        "bf16" if "bf16" in text else "fp32",  # the precision
        "0.00123 PFLOP",  # training compute, shown when results.json has it
        "1 epoch of ",  # the plan, from train.log (not "1 epochs")
        "weighted avg",  # per-class precision / recall / F1
        "Top confusions",
        "most confident mistakes",
        "config.yaml",
    ):
        assert expected in html.unescape(text), expected


def test_a_sweep_starts_with_its_comparison(run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for name, acc in (("depth-8-a", 0.5), ("depth-8-b", 0.75)):
        shutil.copytree(run, sweep / name)
        results = json.loads((sweep / name / "results.json").read_text())
        results["val_acc"] = acc
        (sweep / name / "results.json").write_text(json.dumps(results))
    (sweep / "notes").mkdir()  # not a run: ignored, as compare ignores it
    assert main(["report", str(sweep), "--no-evaluate"]) == 0
    assert "(2 runs)" in capsys.readouterr().out
    text = (sweep / "report.html").read_text(encoding="utf-8")
    assert text.index("<h2>Comparison</h2>") < text.index("<h2>depth-8-b</h2>")
    assert text.index("<h2>depth-8-b</h2>") < text.index("<h2>depth-8-a</h2>")  # best first
    assert "75.00 %" in text and "50.00 %" in text
    assert len(_parse(sweep / "report.html").images) == 1 + 2 * 3  # the plot, 3 per run


def test_no_evaluate_says_so(run, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("eval", "report.html"))
    assert main(["report", str(bare), "--no-evaluate", "--out", str(tmp_path / "r.html")]) == 0
    assert not (bare / "eval").exists()
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "not evaluated" in text and len(_parse(tmp_path / "r.html").images) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/missing"], "no such folder"),
        (["{tmp}"], "no finished run"),
        (["{run}", "--out", "{tmp}/taken.html"], "--force"),
        (["{run}", "--out", "{tmp}/page.pdf"], "must end in .html"),
    ],
)
def test_mistakes_are_one_line_exit_2(run, tmp_path, capsys, argv, message):
    (tmp_path / "taken.html").write_text("mine")
    code = main(["report", *(a.format(tmp=tmp_path, run=run) for a in argv), "--no-evaluate"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert (tmp_path / "taken.html").read_text() == "mine"


CHECK = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {
    images: images.length,
    decoded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    fetched: performance.getEntriesByType("resource").map((e) => e.name),
    height: document.body.scrollHeight,
  };
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_page_renders_offline_in_a_real_browser(run, tmp_path, capsys):
    """Chromium, offline (no proxy, no network), loads every embedded image and fetches
    nothing; a screenshot of the page is not blank."""
    assert main(["report", str(run), "--out", str(tmp_path / "page.html"), "-q"]) == 0
    # A copy with a checking script (the report itself has none).
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    (tmp_path / "check.html").write_text(page.replace("</body>", CHECK + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server"]
    flags += ["--proxy-server=127.0.0.1:9", "--disable-background-networking"]
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", f"file://{tmp_path / 'check.html'}"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    result = json.loads(dom.split('<pre id="browser-check">', 1)[1].split("</pre>", 1)[0])
    assert result["images"] == 3 and result["decoded"] == 3
    assert result["fetched"] == []  # nothing outside the page was requested
    assert result["height"] > 2000
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", *flags, "--hide-scrollbars", f"--screenshot={shot}",
         "--window-size=1200,3000", f"file://{tmp_path / 'page.html'}"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1200, 3000)
        dark = sum(grey.histogram()[:128])
        assert dark > 0.01 * 1200 * 3000  # text, plots and images, not a blank page


def test_a_run_whose_data_is_gone_still_gets_its_page(run, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(run, moved, ignore=shutil.ignore_patterns("eval", "report.html"))
    config = (moved / "config.yaml").read_text()
    (moved / "config.yaml").write_text(
        config.replace("source: digits", f"source: {tmp_path / 'gone'}")
    )
    assert main(["report", str(moved), "-q"]) == 0
    out = capsys.readouterr().out
    assert "note: moved: not evaluated:" in out
    text = (moved / "report.html").read_text(encoding="utf-8")
    assert "not evaluated" in text and "Training curves" in text


def test_the_plan_keeps_the_first_line_of_each_kind(tmp_path):
    """A short run estimates its time after its first epochs: the line is still found."""
    from resnetv2.report import _plan

    stamp = "2026-12-04 16:43:05,521 INFO "
    log = [
        "data: x: 180 train / 60 val images",
        "precision: bf16 autocast",
        "training images: depth-8 basic net, 6 epochs of 2 steps on cpu -> run",
        "epoch 1/6  loss 1.1",
        "epoch 2/6  loss 1.0",
        "expected time for this run: about 32 s",
        "epoch 3/6  loss 0.9",
        "expected time for this run: about 40 s",
    ]
    (tmp_path / "train.log").write_text("".join(f"{stamp}{line}\n" for line in log))
    assert _plan(tmp_path) == [log[0], log[1], log[2], log[5]]


def test_an_out_that_cannot_be_written_is_one_line(run, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    code = main(["report", str(run), "--no-evaluate", "--out", str(tmp_path / "file/r.html")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
