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
        cpu_model(),
    ]
    for name in ("timm", "pytorchcv", "resnetv2"):
        try:
            from importlib.metadata import version

            parts.append(f"{name} {version(name)}")
        except Exception:  # noqa: BLE001 - a missing peer only drops it from the line
            pass
    return ", ".join(parts)


def cpu_model() -> str:
    """The CPU's name with its family/model numbers where Linux reports them (two VMs that
    both say "AMD EPYC" differed 2x in speed), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            fields: dict[str, str] = {}
            for line in handle:
                key, sep, value = line.partition(":")
                if not sep:
                    break  # the end of the first processor's block
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name") or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
