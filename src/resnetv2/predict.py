"""Batched, streaming inference: image files, folders or globs in, top-k classes out.

:class:`Predictor` wraps a model with the preprocessing recorded in its weights' metadata
(input size, interpolation, channels, mean/std) and the project's one decoding policy
(:func:`resnetv2.data.decode.decode_image`). :meth:`Predictor.predict_iter` never lists or
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

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from resnetv2.data.decode import IMAGE_EXTENSIONS, BadImageError, DecodeOptions, decode_image
from resnetv2.data.resize import covering_size
from resnetv2.errors import ResNetV2Error

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_GLOB_CHARS = frozenset("*?[")
# ITU-R BT.601 luma, as Pillow's convert("L"); sums to 1 so grey images stay exact.
_LUMA = (0.299, 0.587, 0.114)


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
            for path in glob.iglob(text, recursive=True):
                matched = True
                if os.path.isdir(path):
                    yield from ((p, None) for p in _walk_images(path))
                else:
                    yield path, None
            if not matched:
                yield text, "no files match this pattern"
        else:
            yield text, "no such file or folder"


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


# -- preprocessing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessing:
    """How inputs become model tensors (the ``preprocessing`` block of a weights file)."""

    input_size: tuple[int, int]
    in_channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    @classmethod
    def from_metadata(cls, block: dict[str, Any]) -> Preprocessing:
        try:
            size = block["input_size"]
            channels = int(block.get("in_channels", 3))
            made = cls(
                input_size=(int(size[0]), int(size[1])),
                in_channels=channels,
                mean=tuple(float(v) for v in block.get("mean", [0.5] * channels)),
                std=tuple(float(v) for v in block.get("std", [0.5] * channels)),
                interpolation=str(block.get("interpolation", "bilinear")),
                crop_pct=float(block.get("crop_pct", 1.0)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ResNetV2Error(f"invalid preprocessing metadata {block!r}: {exc}") from None
        made.check()
        return made

    def check(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ResNetV2Error(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ResNetV2Error(f"mean/std need {self.in_channels} values each")
        if any(s <= 0 for s in self.std) or not 0 < self.crop_pct <= 1:
            raise ResNetV2Error("std must be > 0 and crop_pct in (0, 1]")

    def decode(self, path: str, options: DecodeOptions | None = None) -> torch.Tensor:
        """A file → uint8 ``[C, H, W]`` at ``input_size`` (raises BadImageError)."""
        if self.interpolation == "bilinear" and self.crop_pct == 1.0:
            # The project's own resize rule (shorter side to fit, centre crop), bilinear.
            image = decode_image(path, options, size=self.input_size)
        else:
            image = self.resize(decode_image(path, options))
        return self.to_channels(image)

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """Resize a uint8 ``[3, H, W]`` so it covers ``input_size / crop_pct``, centre-crop."""
        height, width = image.shape[-2:]
        scaled = tuple(round(s / self.crop_pct) for s in self.input_size)
        new_h, new_w = covering_size(height, width, scaled)
        if (new_h, new_w) != (height, width):
            smooth = self.interpolation != "nearest"
            resized = F.interpolate(
                image[None].float(),
                size=(new_h, new_w),
                mode=self.interpolation,
                antialias=smooth,
                align_corners=False if smooth else None,
            )[0]
            image = resized.round_().clamp_(0, 255).to(torch.uint8)
        top, left = (new_h - self.input_size[0]) // 2, (new_w - self.input_size[1]) // 2
        return image[:, top : top + self.input_size[0], left : left + self.input_size[1]]

    def to_channels(self, image: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 3:
            return image
        if self.in_channels == 1:
            luma = torch.tensor(_LUMA).view(3, 1, 1)
            return (image.float() * luma).sum(0, keepdim=True).round_().to(torch.uint8)
        raise ResNetV2Error(f"cannot make {self.in_channels}-channel inputs from image files")

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` → float, scaled to 0..1 and standardised."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (batch.float() / 255 - mean) / std


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
        sources.append(path)
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
    ``predict(["a.jpg", pil_image, tensor])`` → one :class:`Prediction` per input, or
    ``predict_iter(["photos/", "*.png"])`` to stream any number of files.
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
    ) -> None:
        metadata = getattr(model, "metadata", None) or {}
        if preprocessing is None:
            preprocessing = metadata.get("preprocessing")
            if preprocessing is None:
                raise ResNetV2Error("the model carries no preprocessing metadata; pass one")
        if isinstance(preprocessing, dict):
            preprocessing = Preprocessing.from_metadata(preprocessing)
        self.preprocessing = preprocessing
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model = model.to(self.device).eval()
        num_classes = getattr(model, "num_classes", None)
        if num_classes == 0:
            raise ResNetV2Error(
                "these weights have no classifier (num_classes=0): nothing to predict"
            )
        names = class_names if class_names is not None else metadata.get("class_names")
        if names is None or (num_classes and len(names) != num_classes):
            names = [str(i) for i in range(num_classes or 0)]
        self.class_names = list(names)
        self.batch_size = _positive("batch_size", batch_size)
        self.top_k = _positive("top_k", top_k)
        self.decode_options = decode_options

    @classmethod
    def from_weights(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """Load a run folder or weights file (any source :mod:`resnetv2.convert` reads)."""
        from resnetv2.convert.sources import load_weights_source

        return cls(load_weights_source(path, device=kwargs.get("device")), **kwargs)

    # -- tensors in, probabilities out --------------------------------------------------
    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities for a uint8 (or already normalised float) ``[N, C, H, W]``."""
        batch = self.preprocessing.normalize(images) if images.dtype == torch.uint8 else images
        logits = self.model(batch.to(self.device))
        return logits.float().softmax(dim=1).cpu()

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
        """Predict paths, PIL images or tensors (one, or a list mixing them).

        A ``[C, H, W]`` tensor is one image, ``[N, C, H, W]`` a batch; uint8 tensors are
        normalised here, float tensors are taken as already preprocessed.
        """
        top_k = _positive("top_k", top_k or self.top_k)
        if isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
            names = [f"<tensor {i}>" for i in range(len(inputs))]
            return self._rows(names, self.probabilities(inputs), top_k)
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        results: list[Prediction] = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            results.extend(self._predict_mixed(chunk, start, top_k))
        return results

    def _predict_mixed(self, chunk: Sequence[Any], offset: int, top_k: int) -> list[Prediction]:
        slots: list[Prediction | None] = [None] * len(chunk)
        tensors, where, names = [], [], []
        for i, item in enumerate(chunk):
            name = f"<input {offset + i}>"
            try:
                if isinstance(item, (str, os.PathLike)):
                    name = os.fspath(item)
                    tensor = self.preprocessing.decode(name, self.decode_options)
                elif isinstance(item, Image.Image):
                    tensor = self._from_pil(item)
                elif isinstance(item, torch.Tensor) and item.ndim == 3:
                    tensor = self._from_tensor(item)
                else:
                    raise ResNetV2Error(f"cannot predict a {type(item).__name__}")
            except (BadImageError, ResNetV2Error) as exc:
                reason = f"{exc.kind}: {exc.reason}" if isinstance(exc, BadImageError) else str(exc)
                slots[i] = Prediction(source=name, error=reason)
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

    def _from_tensor(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype != torch.uint8:
            return image  # already preprocessed
        if image.shape[0] == 3:
            image = self.preprocessing.to_channels(image)
        return self.preprocessing.resize(image)

    def _from_pil(self, image) -> torch.Tensor:
        """A PIL image through the same mode policy and resize rule as decoded files."""
        import numpy as np

        from resnetv2.data.decode import to_rgb_array
        from resnetv2.data.resize import resize_pil

        prep = self.preprocessing
        rgb = to_rgb_array(image, "<PIL image>", self.decode_options or DecodeOptions())
        if prep.interpolation == "bilinear" and prep.crop_pct == 1.0:
            rgb = np.asarray(resize_pil(Image.fromarray(rgb), prep.input_size))
            tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        else:
            tensor = prep.resize(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))))
        return prep.to_channels(tensor)

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
        size = _positive("batch_size", batch_size or self.batch_size)
        if num_workers > 0:
            names = [os.fspath(i) for i in inputs]  # the arguments, not the expanded files
            loader = torch.utils.data.DataLoader(
                _DecodedBatches(names, size, self.preprocessing, self.decode_options),
                batch_size=None,
                num_workers=num_workers,
                prefetch_factor=2,
            )
            decoded: Iterable = loader
        else:
            batches = batched(iter_image_paths(inputs), size)
            decoded = (decode_batch(b, self.preprocessing, self.decode_options) for b in batches)
        bar = _progress_bar() if progress else None
        try:
            for sources, images, errors in decoded:
                good = [s for s, e in zip(sources, errors) if e is None]
                rows = iter(self._rows(good, self.probabilities(images), top_k) if good else [])
                for source, error in zip(sources, errors):
                    yield Prediction(source=source, error=error) if error else next(rows)
                if bar is not None:
                    bar.update(len(sources))
        finally:
            if bar is not None:
                bar.close()


def _progress_bar():
    from tqdm import tqdm

    return tqdm(unit="img", desc="predict", mininterval=0.5, dynamic_ncols=True)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ResNetV2Error(f"{name} must be a positive integer, got {value!r}")
    return value
