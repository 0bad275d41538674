"""Batched, streaming inference: image files, folders or globs in, top-k classes out.

:class:`Predictor` wraps a model with the :class:`~resnetv2.data.preprocessing.Preprocessing`
recorded in its weights' metadata — the same object, and the same code, that training and
``evaluate`` use, so nothing here transforms pixels itself. :meth:`Predictor.predict_iter` never lists or
decodes all inputs first: paths are produced lazily (folders are walked one directory at a
time), decoded one batch at a time (optionally by a small pool of DataLoader workers), and
each batch's results are yielded before the next batch is read, so memory stays flat however
many images there are. A file the policy refuses yields a :class:`Prediction` with ``error``
set, and the others are still predicted.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from resnetv2.data.decode import IMAGE_EXTENSIONS, BadImageError, DecodeOptions
from resnetv2.data.folders import is_utf8_name, printable_name
from resnetv2.data.preprocessing import Preprocessing, PreprocessingError, preprocessing_of
from resnetv2.device import engine_threads
from resnetv2.errors import ResNetV2Error
from resnetv2.limits import MAX_BATCH_SIZE, MAX_WORKERS, check_count
from resnetv2.model_metadata import metadata_of
from resnetv2.tta import check_tta, tta_probabilities

_GLOB_CHARS = frozenset("*?[")


@dataclass
class Prediction:
    """The top-k classes of one input (or why it could not be read)."""

    source: str
    labels: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        return self.labels[0] if self.labels else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- inputs ---------------------------------------------------------------------------------


def iter_image_paths(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, str | None]]:
    """Expand files, folders (recursively) and glob patterns lazily into ``(path, error)``.

    Folders yield their image files (by extension, hidden files skipped), one directory at a
    time in sorted order; an explicit file is always yielded, whatever its extension (the
    decoder decides). A missing path or a pattern matching nothing yields an error entry.
    """
    for item in inputs:
        text = os.fspath(item)
        if os.path.isdir(text):
            yield from ((p, None) for p in _walk_images(text))
        elif os.path.exists(text):
            yield text, None
        elif _GLOB_CHARS & set(text):
            matched = False
            for path in _iglob(text):
                matched = True
                if os.path.isdir(path):
                    yield from ((p, None) for p in _walk_images(path))
                else:
                    yield path, None
            if not matched:
                yield text, "no files match this pattern"
        else:
            yield text, "no such file or folder"


def _iglob(pattern: str) -> Iterator[str]:
    """``glob.iglob(pattern, recursive=True)`` that ends: ``**`` descends into real folders
    only, as the folder walker does.

    ``glob``'s ``**`` follows symlinked folders without a loop guard, so ``DS/a/up -> ..``
    made ``DS/**/*.jpg`` yield ``DS/a/up/a/up/…`` until the process was killed. Here the
    part before the first ``**`` is an ordinary (finite) glob, ``**`` is each folder below
    it reached by :func:`os.walk` (which does not enter symlinked folders, and skips hidden
    ones as ``glob`` does), and the rest of the pattern is matched again from each of them.
    """
    parts = pattern.split("/")
    if "**" not in parts:
        yield from glob.iglob(pattern)
        return
    cut = parts.index("**")
    prefix, rest = "/".join(parts[:cut]), "/".join(parts[cut + 1 :])
    tops = glob.iglob(prefix) if prefix else [""]
    for top in tops:
        if top and not os.path.isdir(top):
            continue
        for folder, dirs, files in os.walk(top or os.curdir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = folder if top else os.path.relpath(folder)
            here = "" if here == os.curdir else here
            if rest:
                yield from _iglob(os.path.join(glob.escape(here), rest) if here else rest)
            else:  # a trailing ``**``: every folder and file below, as glob gives them
                yield here or os.curdir
                yield from (os.path.join(here, f) for f in sorted(files) if not f.startswith("."))


def _walk_images(root: str) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield os.path.join(folder, name)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# -- batches of decoded files (optionally in worker processes) ------------------------------


class _DecodedBatches(torch.utils.data.IterableDataset):
    """Batches of ``(sources, uint8 images, errors)``; worker ``w`` of ``W`` decodes every
    ``W``-th batch, so the DataLoader's round-robin over workers keeps the input order.

    Holds the (picklable) input list, not a generator, so it works with every process start
    method; each worker expands the inputs itself, lazily.
    """

    def __init__(self, inputs: list[str], size: int, prep, options) -> None:
        self.inputs, self.size, self.prep, self.options = inputs, size, prep, options

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, me = (info.num_workers, info.id) if info else (1, 0)
        for i, batch in enumerate(batched(iter_image_paths(self.inputs), self.size)):
            if i % workers == me:
                yield decode_batch(batch, self.prep, self.options)


def decode_batch(
    batch: Sequence[tuple[str, str | None]], prep: Preprocessing, options: DecodeOptions | None
) -> tuple[list[str], torch.Tensor | None, list[str | None]]:
    sources, images, errors = [], [], []
    for path, error in batch:
        sources.append(printable_name(path))  # every output file stays valid UTF-8
        if error is None and not is_utf8_name(path):
            error = "unreadable: the name is not valid UTF-8 (shown escaped); rename the file"
        if error is None:
            try:
                images.append(prep.decode(path, options))
            except BadImageError as exc:
                error = f"{exc.kind}: {exc.reason}"
        errors.append(error)
    return sources, (torch.stack(images) if images else None), errors


# -- the predictor --------------------------------------------------------------------------


class Predictor:
    """A model plus the preprocessing and class names its weights were saved with.

    ``Predictor.from_weights("run/")`` (or a ``.safetensors`` file), then
    ``predict(["a.jpg", pil_image, array, tensor])`` → one :class:`Prediction` per input, or
    ``predict_iter(["photos/", "*.png"])`` to stream any number of files. ``tta="flip"``
    averages the softmax of each image and its mirror (:mod:`resnetv2.tta`).

    ``engine`` (``auto``, ``torch``, ``onnxruntime``; ``None`` = ``$RESNETV2_ENGINE`` or
    ``auto``) chooses what computes the logits, ``precision`` (``fp32``; ``bf16`` with torch)
    at what precision, ``threads`` how many intra-op threads (default: PyTorch's count);
    see :mod:`resnetv2.inference` and docs/inference.md.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        class_names: Sequence[str] | None = None,
        preprocessing: Preprocessing | dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        batch_size: int = 32,
        top_k: int = 5,
        decode_options: DecodeOptions | None = None,
        tta: str = "none",
        engine: str | None = None,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        from resnetv2.device import resolve_device
        from resnetv2.inference import resolve_engine

        self.preprocessing = preprocessing_of(preprocessing, model)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        num_classes = getattr(model, "num_classes", None)
        if num_classes == 0:
            raise ResNetV2Error(
                "these weights have no classifier (num_classes=0): nothing to predict"
            )
        names = class_names if class_names is not None else metadata_of(model).class_names
        if names is None or (num_classes and len(names) != num_classes):
            names = [str(i) for i in range(num_classes or 0)]
        self.class_names = list(names)
        self.batch_size = check_count("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        self.top_k = _positive("top_k", top_k)
        self.decode_options = decode_options
        self.tta = check_tta(tta)
        # Checked now (an uninstalled engine fails before any file is read); the runner,
        # which may export the weights once, is made at the first batch.
        resolve_engine(engine, self.device.type, precision)
        self._engine = (engine, precision, threads)
        self._runner = None

    @classmethod
    def from_weights(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """Load a run folder or weights file (any source :mod:`resnetv2.convert` reads)."""
        from resnetv2.convert.sources import load_weights_source

        return cls(load_weights_source(path, device=kwargs.get("device")), **kwargs)

    # -- tensors in, probabilities out --------------------------------------------------
    @property
    def runner(self):
        """The inference engine's runner (:func:`resnetv2.inference.make_runner`): ``engine``
        ``auto`` (default) runs onnxruntime on the CPU where installed, else eager torch."""
        if self._runner is None:
            from resnetv2.inference import make_runner

            engine, precision, threads = self._engine
            self._runner = make_runner(
                self.model, engine=engine, precision=precision, device=self.device,
                threads=threads,
            )  # fmt: skip
        return self._runner

    @property
    def engine_used(self) -> str | None:
        """``"onnxruntime fp32"``, ``"torch bf16"``… once a batch has run; else ``None``."""
        return None if self._runner is None else f"{self._runner.name} {self._runner.precision}"

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits of a preprocessed float ``[N, C, H, W]`` batch: the one place a batch meets
        the model, through the chosen inference engine."""
        return self.runner(batch)

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities for a uint8 (or already normalised float) ``[N, C, H, W]``,
        with the predictor's test-time augmentation."""
        # An engine with threads of its own (onnxruntime): the few tensor ops around it
        # (normalise, mirror, softmax) run on this thread, so PyTorch's workers don't spin
        # beside it.
        with engine_threads(self.runner):
            batch = self.preprocessing.normalize(images) if images.dtype == torch.uint8 else images
            return tta_probabilities(self.logits, batch, self.tta).cpu()

    def _rows(self, sources, probs: torch.Tensor, top_k: int) -> list[Prediction]:
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        return [
            Prediction(
                source=src,
                labels=[self.class_names[i] for i in idx.tolist()],
                indices=idx.tolist(),
                probabilities=[round(v, 6) for v in val.tolist()],
            )
            for src, val, idx in zip(sources, values, indices)
        ]

    # -- public API ---------------------------------------------------------------------
    def predict(self, inputs: Any, *, top_k: int | None = None) -> list[Prediction]:
        """Predict one input or a list of them, in order.

        Accepted: file paths; PIL images; NumPy pixel arrays ``[H, W]`` / ``[H, W, C]``
        (uint8 0..255; float read as 0..1 when its largest value is ≤ 1, else 0..255 — see
        :meth:`Preprocessing.from_array`) and ``[N, H, W, C]`` batches; uint8 torch tensors
        of pixels ``[C, H, W]`` / ``[N, C, H, W]`` (C = 1 or 3); float torch tensors taken as
        already preprocessed, ``[N, C, H, W]`` at the model's input size. Files and PIL
        images go through the decoding policy and resize rule; a file the policy refuses
        gives a row with ``error`` set. Anything else, or a wrong shape, raises
        :class:`~resnetv2.data.preprocessing.PreprocessingError` naming the expected shape.
        """
        top_k = _positive("top_k", top_k or self.top_k)
        items = self._split(inputs)
        results: list[Prediction] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            results.extend(self._predict_chunk(chunk, start, top_k))
        return results

    def _split(self, inputs: Any) -> list[Any]:
        """One entry per image: batches (4-D tensors and arrays) are unstacked."""
        if isinstance(inputs, (torch.Tensor, np.ndarray)) and inputs.ndim == 4:
            return list(inputs)
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    def _predict_chunk(self, chunk: Sequence[Any], offset: int, top_k: int) -> list[Prediction]:
        slots: list[Prediction | None] = [None] * len(chunk)
        tensors, where, names = [], [], []
        for i, item in enumerate(chunk):
            name = (
                os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"<input {offset + i}>"
            )
            try:
                tensor = self.prepare(item)
            except BadImageError as exc:
                slots[i] = Prediction(source=name, error=f"{exc.kind}: {exc.reason}")
                continue
            tensors.append(tensor)
            where.append(i)
            names.append(name)
        if tensors:
            if len({t.dtype for t in tensors}) > 1:
                normalize = self.preprocessing.normalize
                tensors = [normalize(t[None])[0] if t.dtype == torch.uint8 else t for t in tensors]
            rows = self._rows(names, self.probabilities(torch.stack(tensors)), top_k)
            for i, row in zip(where, rows):
                slots[i] = row
        return [s for s in slots if s is not None]

    def prepare(self, item: Any) -> torch.Tensor:
        """One input → uint8 ``[C, H, W]`` pixels at the input size, or (float tensors) the
        preprocessed tensor itself after a shape check."""
        prep = self.preprocessing
        if isinstance(item, (str, os.PathLike)):
            return prep.decode(os.fspath(item), self.decode_options)
        if isinstance(item, Image.Image):
            return prep.from_pil(item, self.decode_options)
        if isinstance(item, np.ndarray):
            return prep.from_array(item, self.decode_options)
        if isinstance(item, torch.Tensor):
            return prep.from_tensor(item, self.decode_options)
        raise PreprocessingError(
            f"cannot predict a {type(item).__name__}: pass a file path, a PIL image, a NumPy "
            "HWC array or a torch tensor (uint8 pixels, or a preprocessed float batch)"
        )

    def predict_iter(
        self,
        inputs: Iterable[str | os.PathLike[str]],
        *,
        top_k: int | None = None,
        batch_size: int | None = None,
        num_workers: int = 0,
        progress: bool = False,
    ) -> Iterator[Prediction]:
        """Stream predictions for files, folders and glob patterns, in input order.

        At most one batch of decoded images exists at a time (plus ``2 × num_workers``
        batches prefetched by worker processes). With ``num_workers > 0`` the ``inputs``
        (paths, folders, patterns — not the files they expand to) are read into a list first.
        """
        top_k = _positive("top_k", top_k or self.top_k)
        size = check_count("batch_size", batch_size or self.batch_size, 1, MAX_BATCH_SIZE)
        check_count("num_workers", num_workers, 0, MAX_WORKERS)
        bar = _progress_bar() if progress else None
        try:
            for sources, probs, errors in self.probability_batches(inputs, size, num_workers):
                good = [s for s, e in zip(sources, errors) if e is None]
                rows = iter(self._rows(good, probs, top_k) if good else [])
                for source, error in zip(sources, errors):
                    yield Prediction(source=source, error=error) if error else next(rows)
                if bar is not None:
                    bar.update(len(sources))
        finally:
            if bar is not None:
                bar.close()

    def probability_batches(
        self, inputs: Iterable[str | os.PathLike[str]], batch_size: int, num_workers: int = 0
    ) -> Iterator[tuple[list[str], torch.Tensor | None, list[str | None]]]:
        """``(sources, probabilities of the readable ones, errors)`` per batch of files, in
        order; what ``predict_iter`` and ``evaluate`` on a folder both consume."""
        if num_workers > 0:
            names = [os.fspath(i) for i in inputs]  # the arguments, not the expanded files
            decoded: Iterable = torch.utils.data.DataLoader(
                _DecodedBatches(names, batch_size, self.preprocessing, self.decode_options),
                batch_size=None,
                num_workers=num_workers,
                prefetch_factor=2,
            )
        else:
            batches = batched(iter_image_paths(inputs), batch_size)
            decoded = (decode_batch(b, self.preprocessing, self.decode_options) for b in batches)
        for sources, images, errors in decoded:
            yield sources, (self.probabilities(images) if images is not None else None), errors


# -- CSV rows (predict and evaluate --save-predictions) --------------------------------------


def csv_header(top_k: int) -> list[str]:
    """``source, status, top1_label, top1_index, top1_prob, …, error``."""
    header = ["source", "status"]
    for k in range(1, top_k + 1):
        header += [f"top{k}_label", f"top{k}_index", f"top{k}_prob"]
    return [*header, "error"]


def csv_cells(row: Prediction, top_k: int) -> list[object]:
    """The cells of ``row`` under :func:`csv_header` (probabilities with six decimals)."""
    cells: list[object] = [row.source, "ok" if row.ok else "error"]
    for k in range(top_k):
        if k < len(row.labels):
            cells += [row.labels[k], row.indices[k], f"{row.probabilities[k]:.6f}"]
        else:
            cells += ["", "", ""]
    return [*cells, row.error or ""]


def _progress_bar():
    from tqdm import tqdm

    return tqdm(unit="img", desc="predict", mininterval=0.5, dynamic_ncols=True)


def _positive(name: str, value: Any) -> int:
    """A top-k: any positive integer (rows are clamped to the class count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ResNetV2Error(f"{name} must be a positive integer, got {value!r}")
    return value
