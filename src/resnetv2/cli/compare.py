"""``resnetv2 compare RUN...``: one row per run — which depth was worth it?"""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare finished runs: depth, params, FLOPs, accuracy, time (best first)",
        description="One row per run folder — depth, block, units per stage, parameters, FLOPs, "
        "best and final validation accuracy, epochs, train time, images/s, precision, training "
        "compute in PFLOP (multiply-adds x 2 x 3 x images seen) — sorted "
        "by best accuracy. A folder of runs (e.g. a `train --depth 20,56,110` sweep) counts as "
        "all of its runs. Unreadable or unfinished runs are listed with the reason.",
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folders, or a sweep's folder")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"runs": [...], "unreadable": [...]} instead of a table',
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw accuracy vs parameters, vs train time and vs training compute "
        "(train_pflop, where the runs recorded it) (.png/.svg/.pdf)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from resnetv2.compare import compare_runs, format_table, plot_comparison
    from resnetv2.errors import ResNetV2Error

    comparison = compare_runs(args.runs)
    if not comparison.runs:
        reasons = "; ".join(f"{u['run']}: {u['reason']}" for u in comparison.unreadable)
        raise ResNetV2Error(f"no finished run to compare ({reasons})")
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(format_table(comparison))
    if args.plot:
        path = plot_comparison(comparison, args.plot)
        print(f"plot written to {path}", file=sys.stderr if args.json else sys.stdout)
    return 0
