"""The depth rule: which depths exist, and how their units are spread over the stages.

``depth = 2 + convs_per_unit × total_units`` — one stem conv, the units' convs and one
classifier layer, counted as He et al. 2016 count them. Basic units have 2 convs, bottleneck
units 3, so the paper's CIFAR nets are 6n+2 (basic) and 9n+2 (bottleneck), and the ImageNet
nets are 18/34 (basic) and 50/101/152/200 (bottleneck).

Distribution rules (documented in the README):

- ``cifar`` (3 stages): ``total_units // 3`` units per stage; the remainder (1 or 2 units)
  goes to the last stage(s), the wider ones. Uniform whenever the depth is 6n+2 / 9n+2.
- ``imagenet`` (4 stages): the published unit tables for 18, 34, 50, 101, 152 and 200 exactly.
  Any other depth starts from the largest of those tables (for its block type, or 1,1,1,1) that
  does not exceed it, and adds the remaining units to stage 3 — the 14×14 stage, which is the
  one the published deeper nets grow (ResNet-101 is ResNet-50 plus 17 units in stage 3).
- ``block="auto"`` prefers basic units up to the depths where the papers still use them
  (cifar: depth ≤ 110, He et al.'s ResNet-110; imagenet: depth < 50, ResNet-34), bottleneck
  units above; when the preferred type cannot reach the depth, the other one is used.
"""

from __future__ import annotations

from collections.abc import Iterator

from resnetv2.errors import DepthError, SpecError
from resnetv2.spec import BLOCKS, CONVS_PER_UNIT, MAX_DEPTH, check_choice, check_int

LAYOUTS = ("cifar", "imagenet")
NUM_STAGES = {"cifar": 3, "imagenet": 4}

#: Published ImageNet unit tables (He et al. 2016a/b; torchvision, timm, keras.applications).
CANONICAL_UNITS: dict[str, dict[int, tuple[int, ...]]] = {
    "basic": {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)},
    "bottleneck": {
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
        200: (3, 24, 36, 3),
    },
}

#: ``block="auto"`` uses basic units up to and including this depth.
AUTO_BASIC_MAX_DEPTH = {"cifar": 110, "imagenet": 49}


def min_depth(layout: str, block: str) -> int:
    return 2 + CONVS_PER_UNIT[block] * NUM_STAGES[layout]


def is_reachable(depth: int, layout: str, block: str) -> bool:
    convs = CONVS_PER_UNIT[block]
    return (depth - 2) % convs == 0 and min_depth(layout, block) <= depth <= MAX_DEPTH


def distribute_units(total_units: int, layout: str, block: str) -> tuple[int, ...]:
    """Spread ``total_units`` over the layout's stages by the documented rule."""
    stages = NUM_STAGES[layout]
    if total_units < stages:
        raise DepthError(f"the {layout} layout needs at least {stages} units, got {total_units}")
    if layout == "cifar":
        base, extra = divmod(total_units, stages)
        return tuple(base + (1 if i >= stages - extra else 0) for i in range(stages))
    tables = [(1, 1, 1, 1), *CANONICAL_UNITS[block].values()]
    start = max((t for t in tables if sum(t) <= total_units), key=sum)
    units = list(start)
    units[2] += total_units - sum(start)
    return tuple(units)


def _nearest(depth: int, layout: str, block: str) -> list[int]:
    convs = CONVS_PER_UNIT[block]
    low = min_depth(layout, block)
    below = depth - ((depth - 2) % convs)
    above = below + convs if below != depth else depth
    return [d for d in (below, above) if low <= d <= MAX_DEPTH] or [low]


def depth_error(depth: int, layout: str, block: str) -> DepthError:
    blocks = BLOCKS if block == "auto" else (block,)
    parts = []
    for b in blocks:
        near = " or ".join(str(d) for d in _nearest(depth, layout, b))
        parts.append(
            f"{b}: depth = 2 + {CONVS_PER_UNIT[b]}×units (≥ {min_depth(layout, b)}), nearest {near}"
        )
    what = "any block type" if block == "auto" else f"{block} units"
    return DepthError(
        f"depth {depth} cannot be built from {what} in the {layout} layout. "
        + "; ".join(parts)
        + ". Run `resnetv2 depths` for the full list."
    )


def resolve_block(depth: int, layout: str, block: str = "auto") -> str:
    """The block type for ``depth``: ``block`` itself, or the ``auto`` choice."""
    check_choice("layout", layout, LAYOUTS)
    check_choice("block", block, ("auto", *BLOCKS))
    check_int("depth", depth, 1, MAX_DEPTH)
    if block != "auto":
        if not is_reachable(depth, layout, block):
            raise depth_error(depth, layout, block)
        return block
    preferred = "basic" if depth <= AUTO_BASIC_MAX_DEPTH[layout] else "bottleneck"
    other = "bottleneck" if preferred == "basic" else "basic"
    for candidate in (preferred, other):
        if is_reachable(depth, layout, candidate):
            return candidate
    raise depth_error(depth, layout, "auto")


def units_for_depth(depth: int, layout: str = "cifar", block: str = "auto") -> tuple[str, tuple]:
    """``(block, units_per_stage)`` for a depth, by the rules in this module's docstring."""
    resolved = resolve_block(depth, layout, block)
    if layout == "imagenet" and depth in CANONICAL_UNITS[resolved]:
        return resolved, CANONICAL_UNITS[resolved][depth]
    total = (depth - 2) // CONVS_PER_UNIT[resolved]
    return resolved, distribute_units(total, layout, resolved)


def valid_depths(
    layout: str = "cifar", block: str = "auto", max_depth: int = 200
) -> Iterator[tuple[int, str, tuple[int, ...]]]:
    """Every buildable depth up to ``max_depth`` as ``(depth, block, units_per_stage)``.

    With ``block="auto"`` each depth appears once, with the block ``auto`` would choose.
    """
    check_choice("layout", layout, LAYOUTS)
    check_choice("block", block, ("auto", *BLOCKS))
    check_int("max_depth", max_depth, 1, MAX_DEPTH)
    for depth in range(1, max_depth + 1):
        try:
            yield (depth, *units_for_depth(depth, layout, block))
        except DepthError:
            continue


def depth_from_units(units: tuple[int, ...] | list[int], block: str) -> int:
    if block not in CONVS_PER_UNIT:
        raise SpecError(f"block must be one of {', '.join(BLOCKS)} to count depth, got {block!r}")
    return 2 + CONVS_PER_UNIT[block] * sum(units)
