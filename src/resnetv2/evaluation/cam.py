"""Class activation maps: where in the image a model found the evidence for a class.

**CAM** (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization", Eq. 2):
a network that ends in global average pooling and a linear classifier computes
``logit_k = b_k + mean_xy Σ_c w_kc · f_c(x, y)`` from its last feature map ``f``, so
``M_k(x, y) = Σ_c w_kc · f_c(x, y)`` is exactly each location's share of the logit. It needs
no gradients, and ``M_k.mean() + b_k`` equals the logit (tested). Every net this library
builds with the ``linear`` head and average pooling (the default) qualifies, whether its
classifier is a linear layer or timm's 1×1 conv.

**Grad-CAM** (Selvaraju et al. 2017, Eqs. 1-2) covers the other heads — the ``dense`` head's
hidden layer, max or avg+max pooling: ``α_kc = mean_xy ∂logit_k / ∂f_c(x, y)`` and
``M_k = ReLU(Σ_c α_kc · f_c)``. On an average-pool linear head ``α_kc = w_kc / (h·w)``, so
both give the same map up to scale.

For display (:func:`resnetv2.viz.cam.display_maps`) only the positive evidence is kept and
each map is divided by its own maximum, so 1 marks where the class was most evident; a map
with no positive evidence stays 0. :class:`CamWriter` writes ``predict --cam``'s overlays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from resnetv2.errors import ResNetV2Error

CAM_METHODS = ("auto", "cam", "gradcam")
"""``auto`` (CAM where it is exact, else Grad-CAM), ``cam`` or ``gradcam``."""


@dataclass(frozen=True)
class ActivationMaps:
    """Maps ``[N, h, w]`` at the last feature map's resolution, for ``classes[i]`` of each
    image, with the logits of the pass that made them and the method used."""

    maps: torch.Tensor
    classes: torch.Tensor
    logits: torch.Tensor
    method: str


def linear_classifier(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(weight [K, C], bias [K])`` when ``model``'s head is average pooling followed by
    a linear (or 1×1 conv) classifier — the case where CAM is exact — else ``None``."""
    head = getattr(model, "head", None)
    fc = getattr(head, "fc", None)
    if getattr(head, "global_pool", None) != "avg" or getattr(head, "hidden", True) is not None:
        return None
    if isinstance(fc, nn.Linear):
        return fc.weight, fc.bias
    if isinstance(fc, nn.Conv2d) and fc.kernel_size == (1, 1):
        return fc.weight.flatten(1), fc.bias
    return None


def cam_method(model: nn.Module, method: str = "auto") -> str:
    """The method :func:`class_activation_maps` uses for ``model`` (``cam`` or ``gradcam``)."""
    if method not in CAM_METHODS:
        raise ResNetV2Error(f"unknown CAM method {method!r}; valid: {', '.join(CAM_METHODS)}")
    exact = linear_classifier(model) is not None
    if method == "cam" and not exact:
        raise ResNetV2Error(
            "CAM needs global average pooling followed by a linear classifier; this head "
            "is not linear (use method 'gradcam' or 'auto')"
        )
    if method == "auto":
        return "cam" if exact else "gradcam"
    return method


def class_activation_maps(
    model: nn.Module,
    batch: torch.Tensor,
    classes: torch.Tensor | Sequence[int] | None = None,
    *,
    method: str = "auto",
) -> ActivationMaps:
    """Activation maps of a preprocessed float ``[N, C, H, W]`` ``batch`` for ``classes``
    (one class index per image; default: each image's top-1 prediction).

    ``model`` needs ``forward_features`` and ``forward_head`` (every ResNetV2, and timm's
    models). It runs in eval mode (each module's ``training`` flag is restored afterwards),
    in float32 on the model's device; the model's weights get no gradients.
    """
    from resnetv2.evaluation.loop import eval_mode, model_device

    if not hasattr(model, "forward_features") or not hasattr(model, "forward_head"):
        raise ResNetV2Error(
            f"{type(model).__name__} has no forward_features/forward_head: class activation "
            "maps need the last feature map"
        )
    if getattr(model, "num_classes", 1) == 0:
        raise ResNetV2Error("a backbone without a classifier has no class to map")
    chosen = cam_method(model, method)
    device = model_device(model)
    # A clone outside inference mode: Grad-CAM differentiates through the head.
    batch = batch.detach().clone().to(device=device, dtype=torch.float32)
    with eval_mode(model, grad=chosen == "gradcam"):
        features = model.forward_features(batch).float()
        if chosen == "gradcam":
            features = features.detach().requires_grad_(True)
        logits = model.forward_head(features)
        picked = _classes(classes, logits)
        if chosen == "cam":
            weight, _bias = linear_classifier(model)  # type: ignore[misc]
            maps = torch.einsum("nc,nchw->nhw", weight.float()[picked], features)
        else:
            score = logits.gather(1, picked[:, None]).sum()
            (grads,) = torch.autograd.grad(score, features)
            alpha = grads.mean(dim=(2, 3), keepdim=True)
            maps = (alpha * features).sum(dim=1).clamp_min(0)
    return ActivationMaps(maps.detach(), picked.detach(), logits.detach(), chosen)


def _classes(classes, logits: torch.Tensor) -> torch.Tensor:
    if classes is None:
        return logits.argmax(dim=1)
    picked = torch.as_tensor(classes, dtype=torch.int64, device=logits.device).reshape(-1)
    if picked.shape[0] != logits.shape[0]:
        raise ResNetV2Error(f"{picked.shape[0]} classes given for {logits.shape[0]} images")
    if picked.numel() and (picked.min() < 0 or picked.max() >= logits.shape[1]):
        raise ResNetV2Error(f"class indices must lie in 0..{logits.shape[1] - 1}")
    return picked


class CamWriter:
    """``predict --cam DIR``: for each readable input, the class activation map of its top-1
    class drawn over the image the model saw, as ``DIR/NNNNN_<file stem>.png`` (``NNNNN``:
    the input's row number in the predictions, from 1). Images are taken in batches as the
    predictions stream past, so memory stays bounded."""

    def __init__(self, predictor, folder: str | os.PathLike[str], batch_size: int = 32) -> None:
        self.predictor = predictor
        self.folder = Path(folder)
        self.batch_size = max(1, batch_size)
        self.rows = 0
        self.written = 0
        self._pending: list[tuple[int, object]] = []

    def add(self, row) -> None:
        """Take one :class:`~resnetv2.predict.Prediction` (rows with errors are counted only)."""
        self.rows += 1
        if row.ok:
            self._pending.append((self.rows, row))
            if len(self._pending) >= self.batch_size:
                self._flush()

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        from resnetv2.viz.cam import cam_overlay, save_png

        if not self._pending:
            return
        pending, self._pending = self._pending, []
        pixels = torch.stack([self.predictor.prepare(row.source) for _, row in pending])
        batch = self.predictor.preprocessing.normalize(pixels)
        classes = [row.indices[0] for _, row in pending]
        maps = class_activation_maps(self.predictor.model, batch, classes).maps.cpu()
        self.folder.mkdir(parents=True, exist_ok=True)
        for (number, row), image, cam in zip(pending, pixels, maps):
            stem = Path(row.source).stem or "input"
            save_png(cam_overlay(image, cam), self.folder / f"{number:05d}_{stem}.png")
            self.written += 1
