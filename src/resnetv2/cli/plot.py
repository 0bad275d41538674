"""``resnetv2 plot RUN``: training curves (loss, accuracy, learning rate) from metrics.csv."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="plot a run's training curves (loss, accuracy, learning rate) to a PNG",
        description="Read RUN/metrics.csv (or a metrics CSV file) and draw loss, accuracy and "
        "learning rate per epoch to RUN/curves.png (or --out).",
    )
    p.add_argument("run", metavar="RUN", help="run folder or metrics.csv file")
    p.add_argument("--out", metavar="PATH", help="image file (.png/.svg/.pdf) or folder")
    p.add_argument("--dpi", type=int, default=150, help="resolution of raster images")
    p.set_defaults(func=run)


def run(args) -> int:
    from resnetv2.viz.curves import plot_curves

    path = plot_curves(args.run, args.out, dpi=args.dpi)
    print(f"curves written to {path}")
    return 0
