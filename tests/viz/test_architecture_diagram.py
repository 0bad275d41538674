"""Architecture diagram: structure from the spec (collapsed repeats), valid images."""

import pytest
from PIL import Image

from resnetv2 import make_spec
from resnetv2.presets import list_presets
from resnetv2.viz.architecture import architecture_boxes, plot_architecture


def _units(boxes):
    return [b for b in boxes if b.kind == "unit"]


def test_depth_11_one_box_per_unit():
    spec = make_spec(11)
    boxes = architecture_boxes(spec)
    assert [b.kind for b in boxes] == [
        "stem", "stage", "unit", "stage", "unit", "stage", "unit", "head"
    ]  # fmt: skip
    units = _units(boxes)
    assert [b.repeat for b in units] == [1, 1, 1]
    assert all(b.shortcut == "projection" for b in units)
    # bottleneck, pre-activation: BN-ReLU before each of the three convs
    assert units[0].lines[:6] == (
        "BN-ReLU (pre-activation)",
        "conv 1×1  16→16",
        "BN-ReLU",
        "conv 3×3  16→16",
        "BN-ReLU",
        "conv 1×1  16→64",
    )
    # He et al.'s CIFAR nets put the stride on the first 1×1 of stages 2 and 3
    assert [units[1].lines[i] for i in units[1].strided] == [
        "conv 1×1  64→32  /2",
        "⊕ projection conv 1×1  64→128  /2",
    ]
    assert units[0].strided == ()
    assert "out 256×8×8" in units[2].lines
    assert boxes[-1].lines[-2] == "out 10 logits"


def test_depth_1001_collapses_repeats():
    spec = make_spec(1001)
    units = _units(architecture_boxes(spec))
    assert len(units) == 6
    assert [b.repeat for b in units] == [1, 110] * 3
    assert all("×110" in b.title and "×110" in b.label for b in units[1::2])
    assert units[1].title == "units 2–111  ×110"
    assert all(b.shortcut == "identity" for b in units[1::2])


@pytest.mark.parametrize("name", list_presets())
def test_every_unit_is_drawn_once(name):
    spec = make_spec(name)
    boxes = architecture_boxes(spec, 64)
    for s, stage in enumerate(spec.stages):
        assert sum(b.repeat for b in _units(boxes) if b.column == s + 1) == stage.units


def test_keras_layout_shows_the_subsampled_shortcut_and_seed_skips_preact():
    keras_units = _units(architecture_boxes(make_spec("keras_resnet50v2"), 224))
    subsample = [b for b in keras_units if b.shortcut == "subsample"]
    assert len(subsample) == 3 and all(b.stride == 2 for b in subsample)
    assert any("conv 3×3  64→64  /2" in b.lines for b in subsample)
    seed_units = _units(architecture_boxes(make_spec("seed")))
    assert seed_units[0].lines[0].startswith("no pre-act")
    assert any("raw input" in line for line in seed_units[0].lines)


def test_drop_path_range_is_listed():
    units = _units(architecture_boxes(make_spec(20, drop_path_rate=0.2)))
    assert any(line.startswith("drop-path 0.000–") for line in units[0].lines + units[1].lines)


@pytest.mark.parametrize("depth", [11, 1001])
def test_png_is_written_and_not_blank(tmp_path, depth):
    path = plot_architecture(make_spec(depth), tmp_path / f"arch{depth}.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 1500 and height > 500
        grey = image.convert("L")
        lo, hi = grey.getextrema()
        assert hi - lo > 100  # text and boxes on a white page


def test_svg_by_suffix(tmp_path):
    path = plot_architecture(make_spec(20), tmp_path / "arch.svg")
    text = path.read_text()
    assert "<svg" in text
