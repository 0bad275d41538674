"""Per-file evaluation: a folder streamed through the shared preprocessing, and the
``evaluate --save-predictions`` CSV.

Evaluating a folder decodes each file with the model's
:class:`~resnetv2.data.preprocessing.Preprocessing` — the code ``predict`` runs — one batch at
a time, so ``evaluate --data DIR`` and ``predict DIR`` give the same probabilities for every
file, nothing is cached inside the user's folder, and files the decoding policy refuses are
listed (with their true class) instead of silently dropped. The CSV has ``predict``'s columns
(:func:`resnetv2.predict.csv_header`) followed by ``true_label``, ``correct`` and ``tta``,
so the files a model gets wrong can be filtered in any spreadsheet.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from resnetv2.data.badimages import SkippedImages, warn_skipped
from resnetv2.data.decode import BadImageError, DecodeOptions
from resnetv2.data.preprocessing import Preprocessing


@dataclass
class FolderStream:
    """``(uint8 images, labels)`` batches of a class-folder tree, decoded on the fly.

    ``sources`` grows with every yielded batch (the files in it, in order); ``skipped``
    collects the files the decoding policy refused.
    """

    files: Sequence[str]
    labels: Sequence[int]
    preprocessing: Preprocessing
    batch_size: int
    options: DecodeOptions | None = None
    sources: list[str] = field(default_factory=list)
    skipped: SkippedImages = field(default_factory=SkippedImages)
    skipped_labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.files) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.files), self.batch_size):
            images, labels = [], []
            stop = start + self.batch_size
            for path, label in zip(self.files[start:stop], self.labels[start:stop]):
                try:
                    images.append(self.preprocessing.decode(path, self.options))
                except BadImageError as error:
                    self.skipped.extend([error])
                    self.skipped_labels.append(int(label))
                    continue
                labels.append(int(label))
                self.sources.append(path)
            if images:
                yield torch.stack(images), torch.tensor(labels, dtype=torch.int64)
        warn_skipped(self.skipped, len(self.files))


@dataclass
class PredictionRecorder:
    """Collects the per-batch probabilities and labels that :func:`evaluate` hands out."""

    probabilities: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)

    def __call__(self, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        self.probabilities.append(probabilities)
        self.labels.append(labels)

    def write_csv(
        self,
        path: str | os.PathLike[str],
        sources: Sequence[str],
        class_names: Sequence[str],
        *,
        top_k: int,
        tta: str,
        unreadable: Sequence[tuple[str, int, str]] = (),
    ) -> Path:
        """Write one row per sample (and per ``(file, label, reason)`` in ``unreadable``)."""
        from resnetv2.io import atomic_write_text
        from resnetv2.predict import Prediction, csv_cells, csv_header

        probs = torch.cat(self.probabilities) if self.probabilities else torch.empty(0, 0)
        labels = torch.cat(self.labels) if self.labels else torch.empty(0, dtype=torch.int64)
        if len(sources) != probs.shape[0]:
            raise ValueError(f"{len(sources)} sources for {probs.shape[0]} predictions")
        k = min(top_k, len(class_names))
        handle = io.StringIO()
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*csv_header(k), "true_label", "correct", "tta"])
        if probs.numel():
            values, indices = probs.topk(k, dim=1)
            for source, vals, idx, label in zip(sources, values, indices, labels.tolist()):
                row = Prediction(
                    source=source,
                    labels=[class_names[i] for i in idx.tolist()],
                    indices=idx.tolist(),
                    probabilities=[round(v, 6) for v in vals.tolist()],
                )
                correct = int(idx[0]) == label
                writer.writerow([*csv_cells(row, k), class_names[label], int(correct), tta])
        for source, label, reason in unreadable:
            row = Prediction(source=source, error=reason)
            writer.writerow([*csv_cells(row, k), class_names[label], "", tta])
        target = Path(path)
        atomic_write_text(target, handle.getvalue())
        return target
