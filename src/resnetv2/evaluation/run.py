"""Evaluate a trained run (or a weights file) and write its report: ``resnetv2 evaluate RUN``.

The model comes from ``RUN/model.safetensors`` through :func:`resnetv2.loading.load_model`;
its metadata fixes the class names and the preprocessing (input size, mean, std), and those —
never statistics of the evaluated data — are applied to any dataset, so numbers on new data
are comparable with the run's own validation score. By default the data are the run's own
validation split, re-created from ``RUN/config.yaml`` exactly as training made it. Written to
``RUN/eval/``: ``metrics.json``, ``report.txt`` (with the top confusions),
``confusion_matrix.png`` and ``mistakes.png`` (the most confidently wrong images, each with
the class activation map of its predicted class: :mod:`resnetv2.evaluation.mistakes`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetv2.data.load import BUILTIN_DATASETS
from resnetv2.evaluation.cam import cam_method
from resnetv2.evaluation.loop import evaluate
from resnetv2.evaluation.metrics import EvalResult, EvaluationError
from resnetv2.evaluation.mistakes import MistakeCollector, both, mistake_tiles, top_confusions
from resnetv2.evaluation.predictions import FolderStream, PredictionRecorder
from resnetv2.tta import check_tta

CONFIG_FILE = "config.yaml"
EVAL_FOLDER = "eval"
METRICS_JSON = "metrics.json"
REPORT_TXT = "report.txt"
CONFUSION_PNG = "confusion_matrix.png"
MISTAKES_PNG = "mistakes.png"
DEFAULT_MISTAKES = 16
TOP_CONFUSIONS = 10
SPLITS = ("val", "train")


@dataclass
class RunEvaluation:
    """What :func:`evaluate_run` produced: the result, where it came from, the files written."""

    result: EvalResult
    source: str
    split: str
    weights: Path
    files: dict[str, Path]


def run_data_config(run: Path) -> dict[str, Any]:
    """The ``data`` section of ``RUN/config.yaml`` plus ``seed`` (from ``train.seed``)."""
    from resnetv2.config.yamlfile import read_yaml_file

    path = run / CONFIG_FILE
    if not path.is_file():
        raise EvaluationError(
            f"{run} has no {CONFIG_FILE} recording its data; pass --data digits|cifar10|DIR"
        )
    try:  # bounded: no alias bombs, duplicate keys refused (resnetv2.config.yamlfile)
        config = read_yaml_file(path) or {}
    except ValueError as exc:
        raise EvaluationError(f"{path}: {exc}; pass --data") from None
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not data.get("source"):
        raise EvaluationError(f"{path} names no data.source; pass --data digits|cifar10|DIR")
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    return {**data, "seed": int(train.get("seed", 0) or 0)}


def _load_options(model) -> dict[str, Any]:
    """``load_data`` arguments that give the data the model's
    :class:`~resnetv2.data.preprocessing.Preprocessing` (size, channels, mean/std)."""
    from resnetv2.data.preprocessing import Preprocessing

    block = model.metadata.preprocessing
    if not block:
        return {}
    prep = Preprocessing.from_metadata({"in_channels": model.spec.in_channels, **block})
    if prep.interpolation != "bilinear" or prep.crop_pct != 1.0:
        raise EvaluationError(
            f"these weights resize with {prep.interpolation} interpolation and crop_pct "
            f"{prep.crop_pct:g}, which only image files can be given; pass --data DIR with "
            "the images as class folders"
        )
    return {
        "image_size": prep.input_size,
        "mean": prep.mean,
        "std": prep.std,
        "channels": prep.in_channels,
    }


def load_eval_data(model, data: str | None, run: Path | None, *, split: str, data_dir=None):
    """``(bundle, source, split)``: the dataset to evaluate, normalised as the model expects.

    A built-in name uses its own validation (or training) split; ``None`` re-creates the
    run's split (folders given as ``data`` are streamed by :func:`evaluate_run` instead).
    """
    from resnetv2.data import load_data
    from resnetv2.data.fingerprint import check_fingerprint

    common = _load_options(model)
    if data is None:
        if run is None:
            raise EvaluationError("a weights file has no recorded data; pass --data")
        cfg = run_data_config(run)
        source = str(cfg["source"])
        # A moved or swapped data folder is refused, never silently evaluated.
        check_fingerprint(
            cfg.get("fingerprint"), source, cfg.get("val_data"), what=f"evaluate {run}"
        )
        kwargs = {
            "val_dir": cfg.get("val_data") or cfg.get("val_dir"),
            "val_split": cfg.get("val_split"),
            "data_dir": data_dir or cfg.get("data_dir"),
            "seed": cfg["seed"],
        }
    elif data in BUILTIN_DATASETS:
        source, kwargs = data, {"data_dir": data_dir}
    else:
        raise EvaluationError(
            f"--data {data!r} is neither one of {', '.join(BUILTIN_DATASETS)} nor a folder"
        )
    if source in BUILTIN_DATASETS:
        kwargs.pop("val_dir", None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        bundle = load_data(source, **kwargs, **common)
    except (ValueError, TypeError, OSError) as exc:
        if isinstance(exc, EvaluationError):
            raise
        raise EvaluationError(f"cannot load data {source!r}: {exc}") from exc
    return bundle, source, split


def match_classes(model_names: list[str], data_names: list[str], source: str) -> list[int] | None:
    """Map data labels to model labels; ``None`` when they already agree.

    The class sets must be equal (order may differ); otherwise the error lists what differs.
    """
    if list(model_names) == list(data_names):
        return None
    missing = [n for n in model_names if n not in data_names]
    extra = [n for n in data_names if n not in model_names]
    if missing or extra:
        parts = []
        if extra:
            parts.append(f"not known to the model: {_names(extra)}")
        if missing:
            parts.append(f"missing from the data: {_names(missing)}")
        raise EvaluationError(
            f"the classes of {source} do not match the model's {len(model_names)} classes; "
            + "; ".join(parts)
        )
    position = {name: i for i, name in enumerate(model_names)}
    return [position[name] for name in data_names]


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def evaluate_run(
    run: str | os.PathLike[str],
    *,
    data: str | None = None,
    split: str = "val",
    batch_size: int | None = None,
    device: str | None = None,
    out: str | os.PathLike[str] | None = None,
    data_dir: str | None = None,
    normalize: bool | str = False,
    progress: bool = True,
    tta: str = "none",
    save_predictions: str | os.PathLike[str] | None = None,
    top_k: int = 5,
    engine: str | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    mistakes: int = DEFAULT_MISTAKES,
    mistakes_class: str | None = None,
    cam: bool = True,
) -> RunEvaluation:
    """Evaluate ``run`` (a run folder or a ``.safetensors`` file) and write the report files.

    ``data``: ``None`` (the run's own data from ``config.yaml``), ``digits``/``cifar10``/
    ``cifar100`` or a class-folder directory whose class names equal the model's (evaluated
    whole, each file through the weights' preprocessing exactly as ``predict`` reads it).
    ``split`` chooses the validation or training split (ignored for a directory). ``out``
    defaults to ``RUN/eval`` (``eval/`` beside a weights file). ``tta='flip'`` averages the
    softmax of each image and its mirror. ``save_predictions`` writes a per-file CSV with
    ``predict``'s columns (``top_k`` classes) plus ``true_label``, ``correct`` and ``tta``.
    ``engine``/``precision``/``threads`` choose the inference engine as for ``predict``
    (:func:`resnetv2.inference.make_runner`; default ``auto``: onnxruntime on the CPU where
    installed, the export cached by the weights' checksum).
    ``mistakes`` (0: none) is how many of the most confidently wrong images ``mistakes.png``
    shows, only those whose true class is ``mistakes_class`` when given; with ``cam`` each
    comes with the class activation map of its predicted class (CAM, or Grad-CAM for a head
    that is not linear: :mod:`resnetv2.evaluation.cam`).
    """
    from resnetv2.device import resolve_device
    from resnetv2.loading import load_model, resolve_weights_path

    check_tta(tta)
    if split not in SPLITS:
        raise EvaluationError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    run_path = Path(run)
    weights = resolve_weights_path(run_path)
    run_dir = run_path if run_path.is_dir() else None
    device = resolve_device(device)
    model = load_model(weights, device=device)
    spec = model.spec
    saved_names = model.metadata.class_names
    class_names = list(saved_names or [str(i) for i in range(spec.num_classes)])
    if not spec.num_classes:
        raise EvaluationError(f"{weights} is a backbone without a classifier; nothing to score")
    names_known = bool(saved_names)
    batch_size = batch_size or 256
    recorder = PredictionRecorder() if save_predictions is not None else None
    only = _class_index(mistakes_class, class_names)
    if isinstance(mistakes, bool) or not isinstance(mistakes, int) or mistakes < 0:
        raise EvaluationError(f"mistakes must be a whole number >= 0, got {mistakes!r}")
    from resnetv2.inference import make_runner

    forward = make_runner(model, engine=engine, precision=precision, device=device, threads=threads)
    common = dict(
        class_names=class_names, device=device, progress=progress, tta=tta, forward=forward
    )

    if data is not None and data not in BUILTIN_DATASETS and Path(data).expanduser().is_dir():
        folder = Path(data).expanduser()
        stream = _folder_stream(model, folder, class_names, names_known, batch_size, spec)
        source, split = str(folder), "all"
        normalizer = stream.preprocessing
        collector = _collector(mistakes, only, normalizer.mean, normalizer.std)
        result = evaluate(
            model,
            collector.watch(stream) if collector else stream,
            preprocess=stream.preprocessing.normalize,
            on_batch=both(recorder, collector),
            description="evaluate folder",
            **common,
        )
        sources = stream.sources
        unreadable = [
            (e.path, label, f"{e.kind}: {e.reason}")
            for e, label in zip(stream.skipped.errors, stream.skipped_labels)
        ]
    else:
        bundle, source, split = load_eval_data(model, data, run_dir, split=split, data_dir=data_dir)
        _check_bundle(bundle, spec, class_names, names_known, source)
        if split == "train":
            loader = bundle.train_loader(batch_size, augment="none", device=device)
        else:
            loader = bundle.val_loader(batch_size, device=device)
        collector = _collector(mistakes, only, bundle.mean, bundle.std)
        result = evaluate(
            model,
            collector.watch(loader) if collector else loader,
            on_batch=both(recorder, collector),
            description=f"evaluate {split}",
            **common,
        )
        # A streaming loader leaves refused files out of their batch; so do the sources.
        skipped = set(loader.skipped.files) if hasattr(loader, "skipped") else set()
        sources = [s for s in bundle.sample_sources(split) if s not in skipped]
        unreadable = []
    out_dir = Path(out) if out is not None else (run_dir or weights.parent) / EVAL_FOLDER
    shown = None
    if collector is not None:
        import torch

        from resnetv2.data.stats import Normalizer

        shown = MistakesShown(
            mistake_tiles(
                collector.mistakes(),
                model,
                Normalizer(collector.mean, collector.std, torch.device("cpu")),
                class_names,
                sources,
                cam=cam,
            ),
            wrong=collector.wrong,
            only_class=mistakes_class,
            cam=cam_method(model) if cam else None,
        )
    files = write_report(
        result,
        out_dir,
        header={"weights": str(weights), "data": source, "split": split, "tta": tta},
        normalize=normalize,
        mistakes=shown,
    )
    if recorder is not None:
        files["predictions"] = recorder.write_csv(
            save_predictions, sources, class_names, top_k=top_k, tta=tta, unreadable=unreadable
        )
    return RunEvaluation(result, source, split, weights, files)


def _class_index(name: str | None, class_names: list[str]) -> int | None:
    """The index of ``mistakes_class`` among the model's classes (an error naming them)."""
    if name is None:
        return None
    if name not in class_names:
        from resnetv2.errors import suggest

        raise EvaluationError(
            f"--mistakes-class {name!r} is not one of the model's classes ({_names(class_names)})"
            + suggest(name, class_names)
        )
    return class_names.index(name)


def _collector(limit: int, only: int | None, mean, std) -> MistakeCollector | None:
    return MistakeCollector(limit, mean=mean, std=std, only_class=only) if limit else None


@dataclass
class MistakesShown:
    """What ``mistakes.png`` shows: its tiles, how many samples were wrong (of the class
    asked for, if any) and the map method (``None``: no maps)."""

    tiles: list
    wrong: int
    only_class: str | None = None
    cam: str | None = None

    def title(self, result: EvalResult, where: str) -> str:
        scope = f"true class {self.only_class}, " if self.only_class else ""
        text = (
            f"the {len(self.tiles)} most confident of {self.wrong} mistakes ({scope}"
            f"{result.count} images{where})"
        )
        if self.cam and self.tiles:
            name = "CAM" if self.cam == "cam" else "Grad-CAM"
            text += f"\nbeside each: where it saw the predicted class ({name}; red = most evidence)"
        return text


def _folder_stream(model, folder: Path, class_names, names_known: bool, batch_size: int, spec):
    """A :class:`FolderStream` over ``folder`` with labels in the model's class order."""
    from resnetv2.data import scan_class_folders
    from resnetv2.data.preprocessing import Preprocessing

    try:
        index = scan_class_folders(folder)
    except (ValueError, OSError) as exc:
        raise EvaluationError(f"cannot read {folder} as class folders: {exc}") from None
    labels = list(index.labels)
    if names_known:
        mapping = match_classes(class_names, list(index.class_names), str(folder))
        if mapping is not None:
            labels = [mapping[label] for label in labels]
    elif len(index.class_names) != spec.num_classes:
        raise EvaluationError(
            f"{folder} has {len(index.class_names)} classes but the model predicts "
            f"{spec.num_classes}"
        )
    return FolderStream(index.files, labels, Preprocessing.from_model(model), batch_size)


def _check_bundle(bundle, spec, class_names, names_known: bool, source: str) -> None:
    """Channels and classes of a loaded dataset against the model; labels remapped to the
    model's class order in place."""
    import torch

    if bundle.in_channels != spec.in_channels:
        raise EvaluationError(
            f"{source} has {bundle.in_channels}-channel images but the model expects "
            f"{spec.in_channels}"
        )
    mapping = match_classes(class_names, list(bundle.class_names), source) if names_known else None
    if not names_known and bundle.num_classes != spec.num_classes:
        raise EvaluationError(
            f"{source} has {bundle.num_classes} classes but the model predicts {spec.num_classes}"
        )
    if mapping is not None:
        table = torch.tensor(mapping, dtype=torch.int64)
        bundle.val_labels = table[bundle.val_labels]
        bundle.train_labels = table[bundle.train_labels]


def write_report(
    result: EvalResult,
    out_dir: str | os.PathLike[str],
    *,
    header: dict[str, str] | None = None,
    normalize: bool | str = False,
    mistakes: MistakesShown | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.txt`` (with the top confusions) and
    ``confusion_matrix.png`` into ``out_dir``; ``mistakes.png`` too when ``mistakes`` is given
    (``metrics.json`` then lists its images)."""
    from resnetv2.io import atomic_write_text
    from resnetv2.viz.confusion import plot_confusion_matrix
    from resnetv2.viz.mistakes import plot_mistakes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = dict(header or {})
    confusions = top_confusions(result.confusion, result.class_names, TOP_CONFUSIONS)
    metrics = {
        **header,
        **result.to_dict(),
        "top_confusions": [c.__dict__ for c in confusions],
    }
    files = {
        "metrics": out_dir / METRICS_JSON,
        "report": out_dir / REPORT_TXT,
        "confusion": out_dir / CONFUSION_PNG,
    }
    if mistakes is not None:
        files["mistakes"] = out_dir / MISTAKES_PNG
        metrics["mistakes"] = [
            {
                "source": t.source,
                "true": t.true,
                "predicted": t.predicted,
                "probability": round(t.probability, 6),
            }
            for t in mistakes.tiles
        ]
        metrics["cam"] = mistakes.cam
    atomic_write_text(files["metrics"], json.dumps(metrics, indent=2) + "\n")
    lines = [f"{key}: {value}" for key, value in header.items()]
    text = "\n".join([*lines, "", result.format()] if lines else [result.format()])
    text = text.rstrip() + "\n\n" + format_confusions(confusions)
    atomic_write_text(files["report"], text.rstrip() + "\n")
    where = " · ".join(v for v in (_data_name(header.get("data")), header.get("split")) if v)
    title = f"confusion matrix · {where}" if where else "confusion matrix"
    title += f" · top-1 {100 * result.top1:.2f}% of {result.count}"
    plot_confusion_matrix(
        result.confusion, result.class_names, files["confusion"], normalize=normalize, title=title
    )
    if mistakes is not None:
        title = mistakes.title(result, f", {where}" if where else "")
        plot_mistakes(mistakes.tiles, files["mistakes"], title=title)
    return files


def format_confusions(confusions: list) -> str:
    """The report's last block: ``cat → dog: 12 of 100`` per line, largest first."""
    if not confusions:
        return "top confusions: none (every sample was classified correctly)"
    lines = ["top confusions (true → predicted: count of the true class's samples)"]
    return "\n".join([*lines, *(f"  {c}" for c in confusions)])


def _data_name(data: str | None) -> str:
    """A data source as a title shows it: a folder by its name, not its absolute path."""
    if not data or data in BUILTIN_DATASETS:
        return data or ""
    return Path(data).name or data
