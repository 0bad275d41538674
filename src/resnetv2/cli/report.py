"""``resnetv2 report RUN``: one self-contained HTML page for a run (or a sweep of runs)."""

from __future__ import annotations

from resnetv2.cli.common import add_device_argument, add_progress_arguments, show_progress


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML page for a run or a sweep (curves, evaluation, "
        "mistakes)",
        description="Write RUN/report.html: the spec and recipe, the plan and precision, time "
        "and training compute, the training curves, the confusion matrix, per-class "
        "precision/recall/F1, the top confusions and the most confident mistakes with their "
        "class activation maps — and, for a sweep's folder, a comparison of its runs first. "
        "Images are embedded; the page has no scripts and no reference outside itself, so it "
        "reads the same offline. A run without RUN/eval/ is evaluated first on its own "
        "validation data, as `resnetv2 evaluate RUN` does.",
    )
    p.add_argument("run", metavar="RUN", help="run folder, or a sweep's folder of runs")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="the HTML file (default RUN/report.html, replaced each time); an existing --out "
        "is never overwritten without --force",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument(
        "--no-evaluate",
        dest="evaluate",
        action="store_false",
        help="do not evaluate runs that have no RUN/eval/ (the page says they were not)",
    )
    add_device_argument(p)
    add_progress_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from resnetv2.errors import ResNetV2Error
    from resnetv2.report import write_run_report

    if args.out and Path(args.out).exists() and not args.force:
        raise ResNetV2Error(f"{args.out} exists; pass --force to overwrite it")
    if args.out and not args.out.lower().endswith((".html", ".htm")):
        raise ResNetV2Error(f"--out must end in .html, got {Path(args.out).name!r}")
    report = write_run_report(
        args.run,
        args.out,
        evaluate=args.evaluate,
        device=args.device,
        progress=show_progress(args),
    )
    for note in report.notes:
        print(f"note: {note}")
    if report.evaluated:
        print(f"evaluated: {', '.join(p.name for p in report.evaluated)}")
    runs = len(report.runs)
    print(f"report written to {report.path} ({runs} run{'s' if runs != 1 else ''})")
    return 0
