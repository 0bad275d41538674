"""Patch-whitening stem (Page's ResNet-9; airbench, arXiv:2404.00498)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnetv2 import create_model
from resnetv2.nn.whitening import patch_covariance, whiten_conv_, whitening_filters


def _correlated_images(n=64, size=12, seed=0):
    """Smoothed noise: neighbouring pixels and channels strongly correlated."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, size + 2, size + 2, generator=g)
    smooth = F.avg_pool2d(noise, 3, stride=1)
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.1, 0.6, 1.0]])
    return torch.einsum("dc,nchw->ndhw", mix, smooth) + 0.3


def _output_covariance(stem, images):
    """Covariance over images and positions of the stem's outputs where the 3x3 window lies
    inside the image (the patches it was fitted on; the border sees zero padding)."""
    with torch.no_grad():
        out = stem(images)[..., 1:-1, 1:-1]
    flat = out.permute(0, 2, 3, 1).reshape(-1, out.shape[1]).double()
    return torch.cov(flat.T)


@pytest.mark.parametrize("width", [27, 16])
def test_whitened_stem_outputs_have_identity_covariance_on_the_fitted_data(width):
    images = _correlated_images()
    model = create_model(8, widths=[8, 8, 8], stem_width=width).eval()
    before = _output_covariance(model.stem, images)
    assert not torch.allclose(before, torch.eye(width, dtype=torch.float64), atol=0.1)
    fit = whiten_conv_(model.stem.conv, images, eps=1e-9)
    assert fit.whitened == width and fit.negated == 0 and fit.images == 64
    after = _output_covariance(model.stem, images)
    assert torch.allclose(after, torch.eye(width, dtype=torch.float64), atol=1e-4)
    assert torch.all(fit.eigenvalues[:-1] >= fit.eigenvalues[1:])  # largest first


def test_wide_stem_gets_negated_copies_then_keeps_its_random_filters():
    images = _correlated_images()
    model = create_model(8, widths=[8, 8, 8], stem_width=60)
    spare = model.stem.conv.weight[54:].clone()
    fit = whiten_conv_(model.stem.conv, images)
    weight = model.stem.conv.weight
    assert (fit.whitened, fit.negated) == (27, 27)
    assert torch.equal(weight[27:54], -weight[:27])
    assert torch.equal(weight[54:], spare)
    # with the default eps the strong directions are still whitened
    filters, eigenvalues, count = whitening_filters(images, (3, 3))
    assert count == 64 * 10 * 10 and torch.allclose(weight[:27], filters.float())


def test_patch_covariance_matches_a_direct_computation():
    images = _correlated_images(n=5, size=6)
    mean, cov, count = patch_covariance(images, (3, 3), chunk=2)
    patches = F.unfold(images.double(), (3, 3)).transpose(1, 2).reshape(-1, 27)
    assert count == patches.shape[0] == 5 * 16
    assert torch.allclose(mean, patches.mean(0)) and torch.allclose(cov, torch.cov(patches.T))


def test_whitening_refuses_images_with_other_channels():
    model = create_model(8, widths=[8, 8, 8])
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        whiten_conv_(model.stem.conv, torch.zeros(4, 1, 8, 8))
