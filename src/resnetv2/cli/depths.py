"""``resnetv2 depths``: list the depths the depth rule can build."""

from __future__ import annotations

import json

from resnetv2.depth import LAYOUTS, valid_depths
from resnetv2.spec import BLOCKS


def register(sub) -> None:
    p = sub.add_parser(
        "depths",
        help="list valid depths and their units per stage",
        description="List every depth up to --max that the depth rule can build: "
        "depth = 2 + convs_per_unit × total_units (basic 2, bottleneck 3).",
    )
    p.add_argument("--layout", choices=LAYOUTS, default="cifar")
    p.add_argument(
        "--block",
        choices=("auto", "all", *BLOCKS),
        default="all",
        help="one block type, 'auto' (the automatic choice), or 'all' (default)",
    )
    p.add_argument("--max", type=int, default=200, metavar="N", help="largest depth (default 200)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args) -> int:
    blocks = BLOCKS if args.block == "all" else (args.block,)
    rows = []
    for block in blocks:
        for depth, resolved, units in valid_depths(args.layout, block, args.max):
            rows.append({"depth": depth, "block": resolved, "units_per_stage": list(units)})
    rows.sort(key=lambda r: (r["depth"], r["block"]))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'depth':>7}  {'block':<10}  units per stage  ({args.layout} layout)")
    for r in rows:
        print(f"{r['depth']:>7}  {r['block']:<10}  {','.join(map(str, r['units_per_stage']))}")
    return 0
