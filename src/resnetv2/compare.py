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


def format_table(comparison: Comparison) -> str:
    """A plain-text table, best run first, then the runs that could not be read."""
    header = ["run", "depth", "block", "units", "params", "FLOPs", "best acc", "final acc"]
    header += ["epochs", "time", "img/s", "precision"]
    rows = [header]
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
            ]
        )
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
    """Best accuracy against parameters and against train time, one labelled point per run."""
    from resnetv2.viz.figures import figure_format, new_figure, save_figure

    figure_format(path)  # refuse an unknown suffix before drawing
    fig = new_figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, key, label in (
        (axes[0], "params", "parameters"),
        (axes[1], "train_seconds", "train time (s)"),
    ):
        points = [r for r in comparison.runs if r[key] and r["best_val_acc"] is not None]
        ax.scatter([r[key] for r in points], [100 * r["best_val_acc"] for r in points])
        for r in points:
            ax.annotate(
                f"{r['depth']}", (r[key], 100 * r["best_val_acc"]), textcoords="offset points",
                xytext=(4, 4), fontsize=8,
            )  # fmt: skip
        if len(points) > 1 and max(r[key] for r in points) > 10 * min(r[key] for r in points):
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("best validation accuracy (%)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("accuracy vs size and cost (points labelled by depth)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=dpi)
