"""One page for a whole run: ``resnetv2 report RUN`` writes a self-contained HTML file.

The page is read from the files a run leaves — ``config.yaml`` (the recipe), ``spec.json``,
``results.json`` (outcome, precision, time, training compute when recorded), ``metrics.csv``
(the curves), ``train.log`` (the plan: data, precision, epochs × steps, expected time) and
``RUN/eval/`` (``metrics.json``, the confusion matrix, the mistakes with their class
activation maps). A run without ``eval/`` is evaluated first, exactly as
``resnetv2 evaluate RUN`` would (``evaluate=False`` skips it and says so on the page).

Self-contained: images are embedded as base64 PNG ``data:`` URIs, the style sheet is inline,
and there are no scripts, fonts, links or any other reference outside the file, so it reads
the same offline, mailed or archived. A sweep folder (the runs of ``train --depth 8,14``, read
as :mod:`resnetv2.compare` reads it) gets the comparison table and plot first, then one
section per finished run, best first.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_FILE = "report.html"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121;
  max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #1565c0; padding-bottom: 4px; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.3em 0 0.4em; color: #1565c0; }
.sub { color: #616161; margin-top: 0; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 13em; }
img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; display: block; margin: 6px 0; }
pre { background: #f7f7f7; border: 1px solid #e0e0e0; padding: 8px; overflow-x: auto;
  font-size: 0.85em; white-space: pre-wrap; }
.note { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 10px; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.grid > div { flex: 1 1 420px; min-width: 0; }
details { margin: 0.6em 0; }
summary { cursor: pointer; color: #1565c0; }
"""


@dataclass
class RunReport:
    """What :func:`write_run_report` wrote: the page, the runs on it, the runs it evaluated
    and the notes it shows (a run that could not be evaluated, an unreadable file)."""

    path: Path
    runs: list[Path] = field(default_factory=list)
    evaluated: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_run_report(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    evaluate: bool = True,
    device: str | None = None,
    engine: str | None = None,
    progress: bool = False,
) -> RunReport:
    """Write the HTML page of ``run`` (a run folder or a sweep's folder) to ``out`` (default
    ``RUN/report.html``) and return what it holds. ``evaluate`` runs
    :func:`resnetv2.evaluation.run.evaluate_run` on the run's own data for each run without
    ``eval/metrics.json``; ``device``/``engine``/``progress`` are passed to it."""
    from resnetv2.compare import compare_runs, expand_runs
    from resnetv2.errors import ResNetV2Error
    from resnetv2.io import atomic_write_text

    root = Path(run)
    if not root.is_dir():
        raise ResNetV2Error(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    runs = expand_runs([root])
    sweep = runs != [root]
    comparison = compare_runs([root])
    if not comparison.runs:
        reasons = "; ".join(f"{u['run']}: {u['reason']}" for u in comparison.unreadable)
        raise ResNetV2Error(f"no finished run to report ({reasons})")
    target = Path(out) if out is not None else root / REPORT_FILE
    report = RunReport(target)
    sections = []
    for row in comparison.runs:  # best first
        folder = Path(row["run"])
        report.runs.append(folder)
        if evaluate and not (folder / "eval" / "metrics.json").is_file():
            try:
                _evaluate(folder, device=device, engine=engine, progress=progress)
                report.evaluated.append(folder)
            except (ResNetV2Error, OSError, ValueError) as exc:
                report.notes.append(f"{folder.name}: not evaluated: {exc}")
        sections.append(_run_section(folder, row, report.notes, heading=2 if sweep else None))
    title = f"{root.name} — " + (f"sweep of {len(report.runs)} runs" if sweep else "run report")
    body = [f"<h1>{_e(title)}</h1>", f'<p class="sub">{_e(str(root.resolve()))}</p>']
    if sweep:
        body.append(_sweep_section(comparison))
    body.extend(sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f'\n<p class="sub">written by resnetv2 {_e(_version())} · self-contained: '
        "every image is embedded</p>\n</body>\n</html>\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    return report


def _evaluate(run: Path, **kwargs: Any) -> None:
    from resnetv2.evaluation.run import evaluate_run

    evaluate_run(run, **kwargs)


def _version() -> str:
    from resnetv2 import __version__

    return __version__


# -- the parts of a page ----------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def image_tag(png: bytes, alt: str) -> str:
    """``<img>`` with the PNG embedded as a base64 ``data:`` URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(lines)}</table>"


def _kv(pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs if v)
    return f'<table class="kv">{rows}</table>'


def _pct(value: Any) -> str:
    return f"{100 * value:.2f} %" if isinstance(value, (int, float)) else "-"


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min ({value:,.0f} s)"


def _read_json(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        notes.append(f"{path}: unreadable ({type(exc).__name__})")
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path, notes: list[str]) -> dict[str, Any]:
    from resnetv2.config.yamlfile import read_yaml_file

    if not path.is_file():
        return {}
    try:
        data = read_yaml_file(path)
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: unreadable ({exc})")
        return {}
    return data if isinstance(data, dict) else {}


def _sweep_section(comparison) -> str:
    from resnetv2.compare import comparison_figure
    from resnetv2.viz.figures import figure_bytes

    plot = image_tag(figure_bytes(comparison_figure(comparison)), "accuracy vs size and cost")
    table = _comparison_table(comparison)
    unread = "".join(
        f"<li>{_e(Path(u['run']).name)}: {_e(u['reason'])}</li>" for u in comparison.unreadable
    )
    skipped = f"<p>Not compared:</p><ul>{unread}</ul>" if unread else ""
    return "<h2>Comparison</h2>" + table + plot + skipped


def _comparison_table(comparison) -> str:
    from resnetv2.compare import table_cells

    header, rows = table_cells(comparison)
    numeric = {i for i, h in enumerate(header) if h not in ("run", "block", "units", "precision")}
    return _table(header, rows, numeric=numeric)


def _run_section(run: Path, row: dict[str, Any], notes: list[str], heading: int | None) -> str:
    config = _read_yaml(run / "config.yaml", notes)
    results = _read_json(run / "results.json", notes)
    evaluation = _read_json(run / "eval" / "metrics.json", notes)
    level = heading or 2
    parts = []
    if heading:
        parts.append(f"<h{level}>{_e(run.name)}</h{level}>")
    parts.append(f"<h{level + 1 if heading else 2}>The run</h{level + 1 if heading else 2}>")
    parts.append(_kv(_run_facts(run, row, config, results)))
    plan = _plan(run)
    if plan:
        parts.append("<h3>Plan (from train.log)</h3><pre>" + _e("\n".join(plan)) + "</pre>")
    parts.append("<h3>Training curves</h3>" + _curves(run))
    parts.append("<h3>Evaluation</h3>" + _evaluation(run, evaluation))
    own = [n for n in notes if n.startswith(f"{run.name}:") or n.startswith(str(run))]
    if own:
        parts.append("".join(f'<p class="note">{_e(n)}</p>' for n in own))
    details = []
    for name in ("config.yaml", "spec.json"):
        path = run / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            details.append(f"<details><summary>{_e(name)}</summary><pre>{_e(text)}</pre></details>")
    parts.append("<h3>Recipe and spec, in full</h3>" + "".join(details))
    return "\n".join(parts)


def _run_facts(run, row, config, results) -> list[tuple[str, str]]:
    from resnetv2.compare import _si

    data = config.get("data") or {}
    optim = config.get("optim") or {}
    schedule = config.get("schedule") or {}
    train = config.get("train") or {}
    model = f"depth-{row['depth']} {row['block']} pre-activation ResNet, units per stage "
    model += f"{','.join(map(str, row['units']))}; {_si(row['params'])} parameters, "
    model += f"{_si(row['flops'])} FLOPs per image"
    recipe = str(config.get("name") or results.get("recipe") or "")
    if config.get("description"):  # the recipe's defaults; the rows below say what ran
        recipe += f" (the recipe's description: {config['description']})"
    optimiser = ""
    if optim:
        optimiser = f"{optim.get('name')} lr {optim.get('lr')}"
        if optim.get("name") == "sgd":
            optimiser += f", momentum {optim.get('momentum')}"
            optimiser += ", Nesterov" if optim.get("nesterov") else ""
        optimiser += f", weight decay {optim.get('weight_decay')}"
        if schedule:
            optimiser += f"; schedule {schedule.get('name')}"
            if schedule.get("warmup_epochs"):
                optimiser += f" after {schedule['warmup_epochs']} warm-up epochs"
    training = ""
    if train:
        training = f"{train.get('epochs')} epochs, batch {data.get('batch_size')}"
        training += f", label smoothing {train.get('label_smoothing')}"
        training += ", EMA" if train.get("ema") else ""
        training += f", seed {train.get('seed')}"
    precision = str(results.get("precision") or row.get("precision") or "")
    if results.get("precision_reason"):
        precision += f" ({results['precision_reason']})"
    timing = _seconds(results.get("train_seconds"))
    if timing:
        timing = f"{timing} training"
        if isinstance(results.get("wall_seconds"), (int, float)):
            timing += f", {_seconds(results['wall_seconds'])} wall"
        if isinstance(results.get("images_per_second"), (int, float)):
            timing += f", {results['images_per_second']:,.0f} images/s"
    compute = ""
    if isinstance(results.get("train_pflop"), (int, float)):
        compute = f"{results['train_pflop']:.4g} PFLOP"
    outcome = f"best validation top-1 {_pct(results.get('val_acc'))}"
    if results.get("best_epoch") is not None:
        outcome += f" at epoch {results['best_epoch']}"
    outcome += f", final {_pct(results.get('final_val_acc'))}"
    if results.get("val_count"):
        outcome += f", on {results['val_count']:,} validation images"
    if results.get("stopped_early"):
        outcome += " (stopped early)"
    source = str(data.get("source") or "")
    if data.get("augment"):
        source += f", augmentation {data['augment']}"
    return [
        ("folder", str(run)),
        ("model", model),
        ("recipe", recipe),
        ("data", source),
        ("optimiser", optimiser),
        ("training", training),
        ("precision", precision),
        ("time", timing),
        ("training compute", compute),
        ("outcome", outcome),
    ]


PLAN_PREFIXES = ("data: ", "precision: ", "training ", "expected time", "resuming", "memory")


def _plan(run: Path) -> list[str]:
    """The log lines that say what the run set out to do — data, precision, what is trained
    for how many epochs of how many steps on which device, the expected time (a short run
    estimates it after its first epochs) — the first of each kind, without time stamps."""
    path = run / "train.log"
    if not path.is_file():
        return []
    first: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            message = line.rstrip("\n").split(" INFO ", 1)[-1]
            kind = next((p for p in PLAN_PREFIXES if message.startswith(p)), None)
            if kind is not None and kind not in first:
                first[kind] = message
    return [first[p] for p in PLAN_PREFIXES if p in first]


def _curves(run: Path) -> str:
    from resnetv2.viz.curves import PlotError, curves_figure, read_metrics_csv
    from resnetv2.viz.figures import figure_bytes

    try:
        columns = read_metrics_csv(run / "metrics.csv")
    except (PlotError, OSError, csv.Error) as exc:
        return f'<p class="note">no curves: {_e(exc)}</p>'
    return image_tag(figure_bytes(curves_figure(columns, run.name)), "training curves")


def _evaluation(run: Path, metrics: dict[str, Any]) -> str:
    folder = run / "eval"
    if not metrics:
        return (
            '<p class="note">not evaluated: run <code>resnetv2 evaluate '
            f"{_e(run)}</code> (or <code>resnetv2 report</code> without --no-evaluate)</p>"
        )
    facts = [
        ("data", f"{metrics.get('data', '')} · {metrics.get('split', '')}"),
        ("test-time augmentation", str(metrics.get("tta", "none"))),
        ("samples", f"{metrics.get('count', 0):,}"),
        ("loss", f"{metrics.get('loss', float('nan')):.4f}"),
        ("top-1", _pct(metrics.get("top1"))),
    ]
    if metrics.get("topk", 0) < metrics.get("num_classes", 0):
        facts.append((f"top-{metrics['topk']}", _pct(metrics.get("top5"))))
    parts = [_kv(facts)]
    confusion = folder / "confusion_matrix.png"
    left = image_tag(confusion.read_bytes(), "confusion matrix") if confusion.is_file() else ""
    parts.append(
        f'<div class="grid"><div>{left}</div><div>{_per_class(metrics)}'
        f"{_confusions(metrics)}</div></div>"
    )
    mistakes = folder / "mistakes.png"
    if mistakes.is_file():
        parts.append("<h3>The most confident mistakes, and where the model looked</h3>")
        parts.append(image_tag(mistakes.read_bytes(), "the most confident mistakes"))
    return "\n".join(parts)


def _per_class(metrics: dict[str, Any]) -> str:
    per_class = metrics.get("per_class") or {}
    rows = [
        [name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", f"{m['support']:,}"]
        for name, m in per_class.items()
    ]
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        avg = metrics.get(key) or {}
        f1 = avg.get("f1", avg.get("f1-score"))  # scikit-learn's name in metrics.json
        if "precision" in avg and "recall" in avg and f1 is not None:
            support = int(avg.get("support", metrics.get("count", 0)))
            rows.append(
                [label, f"{avg['precision']:.3f}", f"{avg['recall']:.3f}", f"{f1:.3f}",
                 f"{support:,}"]
            )  # fmt: skip
    header = ["class", "precision", "recall", "F1", "support"]
    return _table(header, rows, numeric={1, 2, 3, 4})


def _confusions(metrics: dict[str, Any]) -> str:
    confusions = metrics.get("top_confusions")
    if confusions is None:
        return ""
    if not confusions:
        return "<p>No confusions: every sample was classified correctly.</p>"
    items = "".join(
        f"<li>{_e(c['true'])} → {_e(c['predicted'])}: {c['count']} of {c['support']}</li>"
        for c in confusions
    )
    title = "Top confusions (true → predicted: count of the true class's samples)"
    return f"<p>{title}</p><ul>{items}</ul>"
