"""Top confusions and the bounded collection of the most confident mistakes."""

import numpy as np
import torch

from resnetv2.data.stats import Normalizer
from resnetv2.evaluation.mistakes import MistakeCollector, pixels_of, top_confusions


def test_top_confusions_largest_first_with_support():
    confusion = np.array([[5, 3, 0], [1, 7, 4], [0, 4, 2]])
    found = top_confusions(confusion, ["cat", "dog", "fox"], limit=3)
    assert [str(c) for c in found] == [
        "dog → fox: 4 of 12",
        "fox → dog: 4 of 6",
        "cat → dog: 3 of 8",
    ]
    assert top_confusions(np.eye(3, dtype=int), "abc") == []


def test_pixels_of_inverts_the_normalisation():
    pixels = torch.randint(0, 256, (2, 3, 5, 4), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    normalised = Normalizer(mean, std, torch.device("cpu"))(pixels)
    assert torch.equal(pixels_of(normalised, mean, std), pixels)
    assert pixels_of(pixels, mean, std) is not None and torch.equal(
        pixels_of(pixels, mean, std), pixels
    )


def test_only_the_most_confident_wrong_ones_are_kept_with_their_pixels():
    collector = MistakeCollector(2, mean=(0.0,), std=(1.0,))
    batches = [
        (torch.arange(3, dtype=torch.uint8).view(3, 1, 1, 1), torch.tensor([0, 0, 1])),
        (torch.arange(3, 6, dtype=torch.uint8).view(3, 1, 1, 1), torch.tensor([1, 1, 0])),
    ]
    probabilities = [
        torch.tensor([[0.3, 0.7], [0.9, 0.1], [0.6, 0.4]]),  # samples 0 and 2 wrong
        torch.tensor([[0.8, 0.2], [0.2, 0.8], [0.1, 0.9]]),  # samples 3 and 5 wrong
    ]
    for (_images, labels), probs in zip(collector.watch(batches), probabilities):
        collector(probs, labels)
    kept = collector.mistakes()
    assert collector.wrong == 4 and collector.seen == 6
    assert [(m.index, m.true, m.predicted) for m in kept] == [(5, 0, 1), (3, 1, 0)]
    assert [round(m.probability, 2) for m in kept] == [0.9, 0.8]
    assert [int(m.pixels.flatten()[0]) for m in kept] == [5, 3]  # each with its own image

    only = MistakeCollector(5, mean=(0.0,), std=(1.0,), only_class=1)
    for (_images, labels), probs in zip(only.watch(batches), probabilities):
        only(probs, labels)
    assert [m.index for m in only.mistakes()] == [3, 2]
