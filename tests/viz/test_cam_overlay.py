"""CAM overlays and the mistakes grid."""

import numpy as np
import torch

from resnetv2.evaluation.cam import class_activation_maps
from resnetv2.viz.cam import cam_overlay, display_maps, display_scale
from resnetv2.viz.mistakes import MistakeTile, mistakes_figure, plot_mistakes


def test_overlay_is_hot_where_the_evidence_is(corner):
    pixels = corner.image("bottom-left")
    batch = torch.from_numpy(pixels).float()[None, None] / 255
    result = class_activation_maps(corner.model(), batch)
    overlay = cam_overlay(torch.from_numpy(pixels)[None], result.maps[0])
    assert overlay.shape == (256, 256, 3) and overlay.dtype == np.uint8  # 16 px × 16
    red, blue = overlay[..., 0].astype(int), overlay[..., 2].astype(int)
    hot = red - blue  # jet: red where the map is 1, blue where it is 0
    # The 4×4 map's cells are 64 px wide: hot at the centre of the bottom-left one, cold at
    # the centre of every cell that saw no signal.
    centres = hot[32::64, 32::64]
    assert centres[3, 0] > 40
    assert (np.delete(centres.flatten(), 12) < -40).all(), centres


def test_display_scale_reaches_the_minimum_side():
    assert display_scale(8, 8) == 32
    assert display_scale(224, 300) == 2
    assert display_scale(600, 400) == 1


def test_mistakes_grid_draws_one_tile_per_mistake(tmp_path):
    pixels = np.zeros((3, 10, 12), np.uint8)
    tiles = [
        MistakeTile(pixels, "cat", "dog", 0.9 - i / 10, f"/data/cat/{i}.jpg", None)
        for i in range(7)
    ]
    fig = mistakes_figure(tiles, "title")
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 7
    assert drawn[0].get_title() == "cat → dog\np = 0.90"
    path = plot_mistakes(tiles, tmp_path / "m.png", title="t")
    from PIL import Image

    with Image.open(path) as image:
        assert image.size[0] >= 256
    empty = mistakes_figure([], "none wrong")
    assert not empty.axes and any("no mistakes" in t.get_text() for t in empty.texts)


def test_a_map_without_positive_evidence_stays_dark():
    maps = torch.tensor([[[-1.0, -2.0], [-3.0, -0.5]], [[0.0, 2.0], [1.0, 0.0]]])
    heat = display_maps(maps, (2, 2))
    assert heat[0].abs().max() == 0
    assert heat[1].tolist() == [[0.0, 1.0], [0.5, 0.0]]
