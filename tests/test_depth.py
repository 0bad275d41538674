import pytest

from resnetv2.depth import (
    CANONICAL_UNITS,
    distribute_units,
    resolve_block,
    units_for_depth,
    valid_depths,
)
from resnetv2.errors import DepthError, SpecError


@pytest.mark.parametrize(
    "depth, block, units",
    [
        (20, "basic", (3, 3, 3)),
        (56, "basic", (9, 9, 9)),
        (110, "basic", (18, 18, 18)),
        (164, "bottleneck", (18, 18, 18)),
        (1001, "bottleneck", (111, 111, 111)),
        (11, "bottleneck", (1, 1, 1)),
        (29, "bottleneck", (3, 3, 3)),
    ],
)
def test_cifar_paper_depths_are_uniform(depth, block, units):
    assert units_for_depth(depth, "cifar", block) == (block, units)


@pytest.mark.parametrize(
    "depth, block", [(d, b) for b, table in CANONICAL_UNITS.items() for d in table]
)
def test_imagenet_canonical_tables_exact(depth, block):
    assert units_for_depth(depth, "imagenet", block) == (block, CANONICAL_UNITS[block][depth])
    # auto picks the block the published net uses
    assert units_for_depth(depth, "imagenet")[0] == block


def test_cifar_remainder_goes_to_last_stages():
    assert distribute_units(10, "cifar", "basic") == (3, 3, 4)
    assert distribute_units(11, "cifar", "basic") == (3, 4, 4)


def test_imagenet_rule_grows_stage_three_from_nearest_table():
    # 104 = 101 + one bottleneck unit: ResNet-101's table plus one unit in stage 3
    assert units_for_depth(104, "imagenet", "bottleneck") == ("bottleneck", (3, 4, 24, 3))
    assert units_for_depth(20, "imagenet", "basic") == ("basic", (2, 2, 3, 2))
    assert units_for_depth(14, "imagenet", "bottleneck") == ("bottleneck", (1, 1, 1, 1))
    assert units_for_depth(26, "imagenet", "bottleneck") == ("bottleneck", (1, 1, 5, 1))


@pytest.mark.parametrize("layout", ["cifar", "imagenet"])
def test_every_listed_depth_satisfies_the_rule(layout):
    for depth, block, units in valid_depths(layout, "auto", 400):
        convs = 2 if block == "basic" else 3
        assert depth == 2 + convs * sum(units)
        assert min(units) >= 1
        assert len(units) == (3 if layout == "cifar" else 4)


def test_auto_block_choice():
    assert resolve_block(110, "cifar") == "basic"  # He et al.'s ResNet-110
    assert resolve_block(164, "cifar") == "bottleneck"  # and ResNet-164
    assert resolve_block(11, "cifar") == "bottleneck"  # basic cannot reach odd depths
    assert resolve_block(34, "imagenet") == "basic"
    assert resolve_block(50, "imagenet") == "bottleneck"


def test_unreachable_depth_names_nearest_valid_depths():
    with pytest.raises(DepthError) as info:
        units_for_depth(13, "cifar")
    message = str(info.value)
    assert "12 or 14" in message and "11 or 14" in message
    with pytest.raises(DepthError, match="16 or 18"):
        units_for_depth(17, "cifar", "basic")


def test_too_shallow_depth_names_minimum():
    with pytest.raises(DepthError, match="nearest 8"):
        units_for_depth(4, "cifar", "basic")


@pytest.mark.parametrize("bad", [10**9, -5, 0, True, 20.0, "20"])
def test_hostile_depths_rejected(bad):
    with pytest.raises(SpecError):
        units_for_depth(bad, "cifar")
