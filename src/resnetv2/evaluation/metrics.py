"""Classification metrics as summable counts: :class:`EvalAccumulator` and :class:`EvalResult`.

Every metric is derived from five sums — summed cross-entropy, top-1 hits, top-k hits, sample
count and the confusion matrix — so one ``all_reduce`` merges the shards of a distributed
evaluation into exactly the single-process numbers, each sample counted once
(docs/reliability.md, promise 5). Per-class precision/recall/F1 come from scikit-learn's
``precision_recall_fscore_support`` / ``classification_report`` (``zero_division=0``), fed
with the (true, predicted) pairs the confusion matrix holds, so a distributed run needs no
gathering of predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from resnetv2.errors import ResNetV2Error

DEFAULT_TOPK = 5


class EvaluationError(ResNetV2Error, ValueError):
    """Evaluation inputs that cannot be scored (shape or label mismatch, nothing to score)."""


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support (true samples) of one class."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalResult:
    """What :func:`resnetv2.evaluation.evaluate` reports for one dataset.

    ``loss`` is the mean cross-entropy (natural log), ``top1``/``top5`` fractions in [0, 1];
    ``topk`` is the k actually used for ``top5`` (capped at the number of classes).
    ``confusion[i, j]`` counts samples of true class ``i`` predicted as ``j``.
    """

    loss: float
    top1: float
    top5: float
    topk: int
    count: int
    class_names: tuple[str, ...]
    confusion: np.ndarray
    per_class: tuple[ClassMetrics, ...]
    macro: dict[str, float] = field(default_factory=dict)
    weighted: dict[str, float] = field(default_factory=dict)
    report: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the content of ``RUN/eval/metrics.json``)."""
        return {
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "topk": self.topk,
            "count": self.count,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "per_class": {
                m.name: {
                    "precision": m.precision,
                    "recall": m.recall,
                    "f1": m.f1,
                    "support": m.support,
                }
                for m in self.per_class
            },
            "macro_avg": dict(self.macro),
            "weighted_avg": dict(self.weighted),
            "confusion_matrix": self.confusion.astype(int).tolist(),
        }

    def format(self) -> str:
        """The report text: a loss/top-1/top-k header, then scikit-learn's classification report."""
        header = f"samples: {self.count}   loss: {self.loss:.4f}   top-1: {100 * self.top1:.2f}%"
        if self.topk < self.num_classes:  # with k >= the class count top-k is always 100 %
            header += f"   top-{self.topk}: {100 * self.top5:.2f}%"
        return f"{header}\n\n{self.report}"


class EvalAccumulator:
    """Running sums of a classification evaluation, mergeable across processes.

    >>> acc = EvalAccumulator(num_classes=10)
    >>> for images, labels in loader:
    ...     acc.update(model(images), labels)
    >>> acc.all_reduce()            # no-op unless torch.distributed is initialised
    >>> result = acc.result(class_names)

    The sums stay on the logits' device (no host sync per batch). Shards must be disjoint
    and cover the dataset once: use a sampler that does not pad (``DistributedSampler``
    repeats samples to even out shards, which would count them twice).
    """

    def __init__(self, num_classes: int, *, topk: int = DEFAULT_TOPK) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise EvaluationError(f"num_classes must be a positive integer, got {num_classes!r}")
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise EvaluationError(f"topk must be a positive integer, got {topk!r}")
        self.num_classes = num_classes
        self.topk = min(topk, num_classes)
        self.reset()

    def reset(self) -> None:
        self._loss_sum: torch.Tensor | None = None
        # correct top-1, correct top-k, count, then the flattened confusion matrix.
        self._counts: torch.Tensor | None = None

    def _init_state(self, device: torch.device) -> None:
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self._counts = torch.zeros(3 + self.num_classes**2, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``logits`` ``[N, num_classes]``, integer ``labels`` ``[N]``."""
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise EvaluationError(
                f"logits must have shape [N, {self.num_classes}], got {list(logits.shape)}"
            )
        labels = torch.as_tensor(labels, device=logits.device).reshape(-1).long()
        if labels.shape[0] != logits.shape[0]:
            raise EvaluationError(
                f"{logits.shape[0]} logits rows but {labels.shape[0]} labels in a batch"
            )
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = labels[(labels < 0) | (labels >= self.num_classes)][0].item()
            raise EvaluationError(
                f"label {bad} is outside 0..{self.num_classes - 1} ({self.num_classes} classes)"
            )
        if self._counts is None or self._counts.device != logits.device:
            if self._counts is not None:  # moved device mid-way: keep the sums, move them
                loss, counts = self._loss_sum, self._counts
                self._init_state(logits.device)
                self._loss_sum += loss.to(logits.device)
                self._counts += counts.to(logits.device)
            else:
                self._init_state(logits.device)
        logits = logits.detach().float()
        n = self.num_classes
        # Per-sample losses summed in float64: the total does not depend on the batching.
        self._loss_sum += F.cross_entropy(logits, labels, reduction="none").double().sum()
        top = logits.topk(self.topk, dim=1).indices
        pred = top[:, 0]
        self._counts[0] += (pred == labels).sum()
        self._counts[1] += (top == labels[:, None]).any(dim=1).sum()
        self._counts[2] += labels.numel()
        self._counts[3:] += torch.bincount(labels * n + pred, minlength=n * n)

    def state(self) -> tuple[float, np.ndarray]:
        """``(loss_sum, [correct1, correctk, count, confusion...])`` on the host."""
        if self._counts is None:
            return 0.0, np.zeros(3 + self.num_classes**2, dtype=np.int64)
        return float(self._loss_sum.item()), self._counts.cpu().numpy().copy()

    @property
    def count(self) -> int:
        return 0 if self._counts is None else int(self._counts[2].item())

    def all_reduce(self, group: Any = None) -> None:
        """Sum the counts over all processes of ``group`` (a no-op without torch.distributed).

        Every process must call it (collectives block until all ranks join), including a rank
        whose shard was empty.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if self._counts is None:
            device = torch.device("cpu")
            if dist.get_backend(group) == "nccl":
                device = torch.device("cuda", torch.cuda.current_device())
            self._init_state(device)
        # float64 keeps the summed loss exact enough for any dataset size; counts stay int64.
        dist.all_reduce(self._counts, group=group)
        dist.all_reduce(self._loss_sum, group=group)

    def result(self, class_names: Sequence[str] | None = None) -> EvalResult:
        """Turn the sums into an :class:`EvalResult` (call after :meth:`all_reduce`)."""
        names = _class_names(class_names, self.num_classes)
        loss_sum, counts = self.state()
        count = int(counts[2])
        if count == 0:
            raise EvaluationError("nothing was evaluated: the dataset is empty")
        confusion = counts[3:].reshape(self.num_classes, self.num_classes)
        return result_from_counts(
            loss_sum=loss_sum,
            correct1=int(counts[0]),
            correctk=int(counts[1]),
            confusion=confusion,
            class_names=names,
            topk=self.topk,
        )


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(i) for i in range(num_classes))
    names = tuple(str(n) for n in class_names)
    if len(names) != num_classes:
        raise EvaluationError(
            f"{len(names)} class names given for a {num_classes}-class evaluation"
        )
    if len(set(names)) != len(names):
        raise EvaluationError("class names must be unique")
    return names


def pairs_from_confusion(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (true, predicted) label arrays whose confusion matrix is ``confusion``."""
    n = confusion.shape[0]
    flat = confusion.reshape(-1).astype(np.int64)
    cells = np.repeat(np.arange(n * n), flat)
    return cells // n, cells % n


def result_from_counts(
    *,
    loss_sum: float,
    correct1: int,
    correctk: int,
    confusion: np.ndarray,
    class_names: Sequence[str],
    topk: int,
) -> EvalResult:
    """Build an :class:`EvalResult` from the summed counts (scikit-learn per-class metrics)."""
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    confusion = np.asarray(confusion, dtype=np.int64)
    count = int(confusion.sum())
    y_true, y_pred = pairs_from_confusion(confusion)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = tuple(
        ClassMetrics(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    )
    report_dict = classification_report(
        y_true,
        y_pred,
        labels=labels,
        target_names=list(class_names),
        zero_division=0,
        output_dict=True,
    )
    report = classification_report(
        y_true,
        y_pred,
        labels=labels,
        target_names=list(class_names),
        zero_division=0,
        digits=4,
    )

    def averages(key: str) -> dict[str, float]:
        row = report_dict[key]
        return {k: float(row[k]) for k in ("precision", "recall", "f1-score", "support")}

    return EvalResult(
        loss=loss_sum / count,
        top1=correct1 / count,
        top5=correctk / count,
        topk=topk,
        count=count,
        class_names=tuple(class_names),
        confusion=confusion,
        per_class=per_class,
        macro=averages("macro avg"),
        weighted=averages("weighted avg"),
        report=report,
    )
