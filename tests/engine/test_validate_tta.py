"""Validation during training with flip TTA scores exactly what evaluate --tta flip scores."""

from __future__ import annotations

import torch
from torch import nn

from resnetv2 import create_model
from resnetv2.engine.metrics import validate
from resnetv2.tta import tta_probabilities


def batches(images, labels, size=16):
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(labels), size)]


def test_flip_tta_validation_scores_the_mean_of_image_and_mirror():
    torch.manual_seed(0)
    # A linear model on raw pixels: its answers depend on left/right, unlike an untrained CNN's.
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10)).eval()
    images = torch.randn(40, 3, 16, 16)
    labels = torch.randint(0, 10, (40,))
    with torch.no_grad():
        expected = tta_probabilities(model, images, "flip").argmax(1)
        plain = model(images).argmax(1)
    assert not torch.equal(expected, plain)  # the mirror changes some answers on random data
    flip = validate(model, batches(images, labels), 10, tta="flip")
    none = validate(model, batches(images, labels), 10)
    assert flip["val_acc"] == (expected == labels).sum().item() / 40
    assert none["val_acc"] == (plain == labels).sum().item() / 40


def test_mirror_symmetric_images_score_the_same_with_and_without_tta():
    torch.manual_seed(1)
    model = create_model(8, num_classes=10, widths=[4, 8, 16]).eval()
    half = torch.randn(24, 3, 16, 8)
    images = torch.cat([half, half.flip(-1)], dim=-1)  # each image equals its mirror
    labels = torch.randint(0, 10, (24,))
    flip = validate(model, batches(images, labels), 10, tta="flip")
    none = validate(model, batches(images, labels), 10)
    assert flip["val_acc"] == none["val_acc"]
    assert abs(flip["val_loss"] - none["val_loss"]) < 1e-5
