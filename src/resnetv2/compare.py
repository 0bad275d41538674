"""Compare training runs: which depth paid off? (``resnetv2 compare RUN...``)

One row per run folder, read from the files ``resnetv2 train`` leaves (``spec.json``,
``results.json``, ``train.log``, ``config.yaml``, the weights' metadata): the architecture
(depth, block, units per stage, parameters, FLOPs at the trained input size), the outcome
(best and final validation accuracy, epochs) and the cost (train time, images per second,
numeric precision). Rows are sorted by best accuracy. A folder that cannot be read, or whose
run has not finished (no ``results.json`` yet), is reported with the reason instead of
stopping the comparison: a sweep still in progress can be compared as it goes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetv2 import jsontext

#: The keys of one row, in table order (``--json`` prints exactly these).
ROW_KEYS = (
    "run",
    "depth",
    "block",
    "units",
    "params",
    "flops",
    "best_val_acc",
    "final_val_acc",
    "epochs",
    "train_seconds",
    "images_per_second",
    "precision",
    "train_pflop",
    "val_count",
)


class RunUnreadable(Exception):
    """Why one run folder cannot be compared (caught per run, never fatal)."""


@dataclass
class Comparison:
    """Rows of finished runs (best accuracy first) and ``(run, reason)`` for the others."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "unreadable": self.unreadable}


def compare_runs(paths: list[str | os.PathLike[str]]) -> Comparison:
    """Read every run in ``paths``; a folder holding run folders (a sweep) counts as all of
    them."""
    result = Comparison()
    for path in expand_runs(paths):
        try:
            result.runs.append(read_run(path))
        except RunUnreadable as exc:
            result.unreadable.append({"run": os.fspath(path), "reason": str(exc)})
    result.runs.sort(key=lambda r: (-_num(r["best_val_acc"]), r["params"] or 0))
    return result


def expand_runs(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Run folders as given; a sweep's parent folder becomes its run folders (sorted)."""
    runs: list[Path] = []
    for p in map(Path, paths):
        children = sorted(c for c in p.iterdir() if _is_run(c)) if p.is_dir() else []
        runs.extend(children if children and not _is_run(p) else [p])
    return runs


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("spec.json", "config.yaml"))


def read_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One comparison row for the run folder at ``path``; :class:`RunUnreadable` otherwise."""
    from resnetv2.analysis import count_flops, count_params
    from resnetv2.errors import ResNetV2Error
    from resnetv2.spec import ResNetV2Spec

    run = Path(path)
    if not run.is_dir():
        raise RunUnreadable("not a folder" if run.exists() else "no such folder")
    if not (run / "spec.json").is_file():
        raise RunUnreadable("no spec.json: not a `resnetv2 train` run folder")
    try:
        spec = ResNetV2Spec.from_json((run / "spec.json").read_text(encoding="utf-8"))
    except (OSError, ResNetV2Error) as exc:
        raise RunUnreadable(f"spec.json unreadable: {exc}") from None
    results = _json(run / "results.json")
    if results is None:
        raise RunUnreadable("unfinished: no results.json yet (still training, or stopped)")
    size = _input_size(run)
    return {
        "run": os.fspath(run),
        "depth": spec.depth,
        "block": spec.block,
        "units": list(spec.units_per_stage),
        "params": int(results.get("params") or count_params(spec)),
        "flops": count_flops(spec, size),
        "best_val_acc": _float(results.get("val_acc")),
        "final_val_acc": _float(results.get("final_val_acc")),
        "epochs": results.get("epochs"),
        "train_seconds": _float(results.get("train_seconds")),
        "images_per_second": _images_per_second(run, results),
        "precision": results.get("precision") or _precision_from_config(run),
        # Training compute (analysis.training_pflop); None for runs from before it was recorded.
        "train_pflop": _float(results.get("train_pflop")),
        "val_count": results.get("val_count"),
    }


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunUnreadable(f"{path.name} unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise RunUnreadable(f"{path.name} is not a JSON object")
    return data


def _input_size(run: Path) -> tuple[int, int]:
    """The trained input size, from the weights' preprocessing (else config, else 32)."""
    weights = run / "model.safetensors"
    if weights.is_file():
        try:
            from resnetv2.io import read_weights_metadata

            size = read_weights_metadata(weights)["preprocessing"]["input_size"]
            return int(size[0]), int(size[1])
        except Exception:  # noqa: BLE001 - fall back to the config below
            pass
    size = (_config(run).get("data") or {}).get("image_size") or 32
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _config(run: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _images_per_second(run: Path, results: dict[str, Any]) -> float | None:
    """Median training throughput over the epochs: ``results.json`` records it; runs from
    before it did are read from their epoch summaries in ``train.log`` (``(1027 img/s)``).
    The median ignores a slow first (warm-up) epoch."""
    import re
    import statistics

    recorded = _float(results.get("images_per_second"))
    if recorded is not None:
        return recorded
    values: list[float] = []
    try:
        text = (run / "train.log").read_text(encoding="utf-8", errors="replace")
        values = [float(v) for v in re.findall(r"\(([0-9.]+) img/s\)", text)]
    except OSError:
        return None
    values = [v for v in values if math.isfinite(v) and v > 0]
    return statistics.median(values) if values else None


def _precision_from_config(run: Path) -> str:
    """Older runs did not record their precision: infer it from the ``train.amp`` setting."""
    amp = str((_config(run).get("train") or {}).get("amp", "")).lower()
    return {"on": "bf16", "off": "fp32", "true": "bf16", "false": "fp32"}.get(amp, "unknown")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _num(value: Any) -> float:
    return value if isinstance(value, float) and math.isfinite(value) else -math.inf


def table_cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the comparison table as text cells, best run first (what
    :func:`format_table` aligns and ``resnetv2 report`` puts in HTML)."""
    header = ["run", "depth", "block", "units", "params", "FLOPs", "best acc", "final acc"]
    header += ["epochs", "time", "img/s", "precision", "PFLOP", "val n"]
    rows = []
    for r in comparison.runs:
        rows.append(
            [
                _short(r["run"]),
                str(r["depth"]),
                r["block"],
                ",".join(map(str, r["units"])),
                _si(r["params"]),
                _si(r["flops"]),
                _pct(r["best_val_acc"]),
                _pct(r["final_val_acc"]),
                str(r["epochs"]),
                "-" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}s",
                "-" if r["images_per_second"] is None else f"{r['images_per_second']:.0f}",
                r["precision"],
                "-" if r.get("train_pflop") is None else f"{r['train_pflop']:.3g}",
                str(r["val_count"]) if r.get("val_count") else "-",
            ]
        )
    return header, rows


def format_table(comparison: Comparison) -> str:
    """A plain-text table, best run first, then the runs that could not be read."""
    header, cells = table_cells(comparison)
    rows = [header, *cells]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for bad in comparison.unreadable:
        lines.append(f"not compared: {bad['run']}: {bad['reason']}")
    return "\n".join(lines)


def _short(run: str) -> str:
    p = Path(run)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _si(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def plot_comparison(comparison: Comparison, path: str | os.PathLike[str], *, dpi: int = 150):
    """Best accuracy against parameters, train time and, when any run recorded it, training
    compute (:func:`comparison_figure`)."""
    from resnetv2.viz.figures import figure_format, save_figure

    figure_format(path)  # refuse an unknown suffix before drawing
    return save_figure(comparison_figure(comparison), path, dpi=dpi)


def comparison_figure(comparison: Comparison):
    """Best validation accuracy (0-100 %, never zoomed) against parameters (k/M/G), against
    train time and — when any run recorded it — against training compute (``train_pflop``),
    one 5-inch panel each; one colour and marker per run, named in the legend (run folder,
    depth, accuracy of how many validation images), so runs of one depth stay apart."""
    from matplotlib.ticker import FuncFormatter

    from resnetv2.viz.figures import new_figure

    runs = [r for r in comparison.runs if r["best_val_acc"] is not None]
    panels = [("params", "parameters"), ("train_seconds", "train time (s)")]
    if any(r.get("train_pflop") for r in runs):
        panels.append(("train_pflop", "training compute (PFLOP)"))
    columns = len(panels)
    legend_rows = -(-len(runs) // columns)
    fig = new_figure(5 * len(panels), 4.6 + 0.22 * legend_rows)
    axes = fig.subplots(1, len(panels))
    markers = "osD^vP*Xhp<>"
    handles = []
    for i, r in enumerate(runs):
        style = {"color": f"C{i % 10}", "marker": markers[i % len(markers)], "s": 46}
        handle = None
        for ax, (key, _label) in zip(axes, panels):
            if r.get(key):
                handle = ax.scatter([r[key]], [100 * r["best_val_acc"]], **style)
        if handle is not None:
            handles.append((handle, _legend_label(r)))
    counts = sorted({r["val_count"] for r in runs if r.get("val_count")})
    on = ""
    if len(counts) == 1:
        on = f" on {counts[0]:,} images"
    elif counts:
        on = f" on {counts[0]:,}–{counts[-1]:,} images"
    for ax, (key, label) in zip(axes, panels):
        values = [r[key] for r in runs if r.get(key)]
        if len(values) > 1 and max(values) > 10 * min(values):
            ax.set_xscale("log")
        if key == "params":
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _si_tick(v)))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        ax.set_ylim(0, 100)
        ax.set_xlabel(label)
        ax.set_ylabel(f"best validation accuracy (%){on}")
        ax.grid(True, alpha=0.3)
    fig.suptitle("accuracy vs size and cost, one point per run")
    if handles:
        fig.legend(
            [h for h, _ in handles], [t for _, t in handles], loc="lower center",
            ncol=columns, fontsize=8, frameon=False,
        )  # fmt: skip
    fig.subplots_adjust(
        left=0.08, right=0.98, top=0.9, wspace=0.3,
        bottom=(0.75 + 0.22 * legend_rows) / fig.get_figheight(),
    )  # fmt: skip
    return fig


def _si_tick(n: float) -> str:
    """An axis tick: 75k, 1.25M (three significant digits at most)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _legend_label(row: dict[str, Any]) -> str:
    text = f"{_short(row['run'])}: depth {row['depth']}, {_pct(row['best_val_acc'])}"
    if row.get("val_count"):
        text += f" of {row['val_count']:,}"
    return text
