"""Helpers shared by the benchmark scripts: environment line and table printing."""

from __future__ import annotations

import os
import platform
import statistics


def environment() -> str:
    import torch

    parts = [
        f"python {platform.python_version()}",
        f"torch {torch.__version__}",
        f"threads {torch.get_num_threads()}",
        f"cpus {os.cpu_count()}",
        platform.processor() or platform.machine(),
    ]
    for name in ("timm", "pytorchcv", "resnetv2"):
        try:
            from importlib.metadata import version

            parts.append(f"{name} {version(name)}")
        except Exception:  # noqa: BLE001 - a missing peer only drops it from the line
            pass
    return ", ".join(parts)


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
