"""``resnetv2 plot RUN``: training curves (loss, accuracy, learning rate) from metrics.csv."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="plot a run's training curves (loss, accuracy, learning rate) to a PNG",
        description="Read RUN/metrics.csv (or a metrics CSV file) and draw loss, accuracy and "
        "learning rate per epoch to RUN/curves.png (or --out, which is never overwritten "
        "without --force).",
    )
    p.add_argument("run", metavar="RUN", help="run folder or metrics.csv file")
    p.add_argument("--out", metavar="PATH", help="image file (.png/.svg/.pdf) or folder")
    p.add_argument("--dpi", type=int, default=150, help="resolution of raster images")
    p.add_argument("--force", action="store_true", help="overwrite the --out image if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from resnetv2.errors import ResNetV2Error
    from resnetv2.viz.curves import CURVES_FILE, plot_curves

    if args.out is not None and not args.force:
        # The one rule of every command: a path named with --out is never overwritten
        # without --force (the default RUN/curves.png is the run's own and is replaced).
        target = Path(args.out)
        target = target / CURVES_FILE if target.is_dir() else target
        if target.exists():
            raise ResNetV2Error(f"{target} exists; pass --force to overwrite it")
    path = plot_curves(args.run, args.out, dpi=args.dpi)
    print(f"curves written to {path}")
    return 0
