"""The evaluation loop: run a model over a dataset once and score it.

:func:`evaluate` puts the model in inference mode for the duration of the call and restores
every sub-module's ``training`` flag afterwards, so BatchNorm running statistics are read,
never updated, and a validation pass in the middle of training changes nothing
(docs/reliability.md: "``evaluate()`` leaves BN statistics and ``model.training`` unchanged").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from resnetv2.device import engine_threads
from resnetv2.evaluation.metrics import DEFAULT_TOPK, EvalAccumulator, EvalResult, EvaluationError
from resnetv2.model_metadata import metadata_of
from resnetv2.tta import check_tta, tta_probabilities

Batch = tuple[torch.Tensor, torch.Tensor]
Preprocess = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def eval_mode(model: nn.Module, *, grad: bool = False) -> Iterator[nn.Module]:
    """``model.eval()`` and ``torch.no_grad()`` (``torch.enable_grad()`` with ``grad=True``,
    for Grad-CAM) inside the block; each module's flag restored.

    Restoring per module (not ``model.train(was_training)``) keeps layers a user froze in eval
    mode, e.g. BatchNorm in fine-tuning, frozen after the call.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.enable_grad() if grad else torch.no_grad():
            yield model
    finally:
        for module, training in flags:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _distributed() -> tuple[int, int] | None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _tensor_batches(
    images: Any, labels: Any, batch_size: int, shard: tuple[int, int] | None
) -> tuple[Iterable[Batch], int]:
    images = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    labels = torch.as_tensor(np.asarray(labels)) if not isinstance(labels, torch.Tensor) else labels
    if not isinstance(images, torch.Tensor):
        raise EvaluationError(
            f"images must be a tensor or numpy array, got {type(images).__name__}"
        )
    if images.ndim != 4:
        raise EvaluationError(f"images must be [N, C, H, W], got shape {list(images.shape)}")
    labels = labels.reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise EvaluationError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if shard is not None:
        # Strided shards are disjoint and cover every index once, for any dataset size.
        rank, world = shard
        images, labels = images[rank::world], labels[rank::world]
    n = images.shape[0]
    batches = (
        (images[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, n, batch_size)
    )
    return batches, (n + batch_size - 1) // batch_size


def _check_unpadded(loader: Any) -> None:
    sampler = getattr(loader, "sampler", None)
    from torch.utils.data import DistributedSampler

    if isinstance(sampler, DistributedSampler) and not sampler.drop_last:
        size = len(sampler.dataset)
        if size % sampler.num_replicas:
            raise EvaluationError(
                f"DistributedSampler pads {size} samples to a multiple of {sampler.num_replicas} "
                "processes, so some would be counted twice; shard the evaluation set without "
                "padding (e.g. indices[rank::world_size])"
            )


def _metadata_preprocess(model: nn.Module, device: torch.device) -> Preprocess | None:
    """Normalisation by ``model.metadata.preprocessing``'s mean/std, with the data layer's
    :class:`~resnetv2.data.stats.Normalizer` (what ``Preprocessing.normalize`` and the
    loaders use); ``None`` when the model records no mean/std."""
    from resnetv2.data.stats import Normalizer

    prep = metadata_of(model).preprocessing or {}
    if "mean" not in prep or "std" not in prep:
        return None
    return Normalizer(prep["mean"], prep["std"], device)


def evaluate(
    model: nn.Module,
    data: Iterable[Batch] | tuple[Any, Any],
    *,
    class_names: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 256,
    preprocess: Preprocess | None = None,
    topk: int = DEFAULT_TOPK,
    distributed: bool | None = None,
    progress: bool = False,
    description: str = "evaluate",
    tta: str = "none",
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> EvalResult:
    """Score ``model`` on ``data``: mean cross-entropy, top-1, top-k, per-class P/R/F1, confusion.

    ``data`` is an iterable of ``(images, labels)`` batches (a ``DataLoader``, or a data
    bundle's validation loader) or one ``(images, labels)`` pair of tensors/arrays that is cut
    into ``batch_size`` batches. ``preprocess`` is applied to each image batch on ``device``;
    uint8 images with no ``preprocess`` are normalised with the mean/std recorded in
    ``model.metadata.preprocessing`` (models from :func:`resnetv2.load`).
    ``class_names`` default to ``model.metadata.class_names``, else ``"0".."N-1"``.
    ``device`` defaults to where the model is; a model elsewhere is moved there.

    Under ``torch.distributed`` (``distributed=None`` means "if initialised"), an
    ``(images, labels)`` pair is sharded ``[rank::world_size]`` and the counts are summed over
    all ranks, so every rank returns the whole dataset's result; a loader must already yield
    this rank's disjoint shard. The model's ``training`` flags and BatchNorm statistics are
    unchanged on return.

    ``tta='flip'`` scores the mean of the softmax of each image and its mirror
    (:mod:`resnetv2.tta`); the loss is then the cross-entropy of that mean.
    ``forward`` replaces ``model(batch)`` as the function from a preprocessed batch to logits
    (an inference engine). ``on_batch(probabilities, labels)`` receives each batch's softmax
    probabilities (after TTA) and labels on the CPU, in order (per-file predictions).
    """
    check_tta(tta)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EvaluationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device is None:
        device = model_device(model)
    else:
        device = torch.device(device)
        if model_device(model) != device:
            model.to(device)
    if class_names is None:
        class_names = metadata_of(model).class_names
    shard = _distributed() if distributed in (None, True) else None
    if distributed and shard is None:
        raise EvaluationError("distributed=True but torch.distributed is not initialised")

    if isinstance(data, (tuple, list)) and len(data) == 2 and not _is_batch_list(data):
        batches, total = _tensor_batches(data[0], data[1], batch_size, shard)
    else:
        if shard is not None:
            _check_unpadded(data)
        batches = data
        total = len(data) if hasattr(data, "__len__") else None

    accumulator = EvalAccumulator(len(class_names), topk=topk) if class_names else None
    auto_preprocess: Preprocess | None = None
    # An engine with threads of its own (onnxruntime) gets the tensor ops around it on one
    # PyTorch thread, as in ``predict``.
    with eval_mode(model), engine_threads(forward):
        for images, labels in _progress(batches, total, progress, description):
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if preprocess is not None:
                images = preprocess(images)
            elif images.dtype == torch.uint8:
                auto_preprocess = auto_preprocess or _metadata_preprocess(model, device)
                if auto_preprocess is None:
                    raise EvaluationError(
                        "images are uint8 but no preprocess was given and the model records "
                        "no mean/std; pass preprocess= or normalised float images"
                    )
                images = auto_preprocess(images)
            logits, probabilities = score(forward or model, images, tta, on_batch is not None)
            if on_batch is not None:
                on_batch(probabilities.cpu(), labels.cpu())
            if class_names and logits.ndim == 2 and logits.shape[1] != len(class_names):
                raise EvaluationError(
                    f"the model outputs {logits.shape[1]} classes but {len(class_names)} class "
                    "names were given"
                )
            if accumulator is None:
                accumulator = EvalAccumulator(logits.shape[1], topk=topk)
            accumulator.update(logits, labels)
    if accumulator is None:
        if shard is None:
            raise EvaluationError("nothing was evaluated: the dataset is empty")
        # An empty shard still has to join the collective; the class count must be known.
        raise EvaluationError("pass class_names when a process may receive no batches")
    if shard is not None:
        accumulator.all_reduce()
    return accumulator.result(class_names)


def score(forward, images: torch.Tensor, tta: str, want_probabilities: bool):
    """``(logits for the accumulator, softmax probabilities or None)``.

    With TTA the "logits" are the log of the mean probabilities: their softmax is that mean
    again, so top-k and the cross-entropy follow the averaged prediction.
    """
    if tta == "none":
        logits = forward(images)
        return logits, (logits.float().softmax(dim=1) if want_probabilities else None)
    probabilities = tta_probabilities(forward, images, tta)
    return probabilities.clamp_min(1e-30).log(), probabilities


def _is_batch_list(data: Sequence[Any]) -> bool:
    """True for a list of two ``(images, labels)`` batches rather than one ``(images, labels)``."""
    return all(isinstance(item, (tuple, list)) for item in data)


def _progress(batches: Iterable[Batch], total: int | None, enabled: bool, description: str):
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, total=total, desc=description, unit="batch", leave=False)
