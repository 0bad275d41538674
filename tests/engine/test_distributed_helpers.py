"""Per-process sharding without padding, SyncBN conversion, resume diffs (no process group)."""

import pytest
import torch

from resnetv2.engine.distributed import (
    DistContext,
    SyncBatchNormAct2d,
    convert_sync_batchnorm,
    local_slice,
    shard_range,
)
from resnetv2.engine.resume import ResumeMismatchError, check_resume, resume_changes
from resnetv2.nn import create_model
from resnetv2.nn.layers import BatchNormAct2d


@pytest.mark.parametrize("total", [0, 1, 7, 359, 360])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_cover_every_item_exactly_once(total, world):
    covered = []
    for rank in range(world):
        start, stop = shard_range(total, DistContext(rank, world))
        covered.extend(range(start, stop))
        assert stop - start in (total // world, total // world + 1)
    assert covered == list(range(total))


def test_local_slice_splits_a_global_batch():
    batch = torch.arange(10)
    parts = [local_slice(batch, DistContext(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch)
    assert local_slice(batch, DistContext()) is batch


def test_sync_batchnorm_conversion_keeps_the_activation_and_the_state():
    model = create_model(8, widths=[4, 8, 8], num_classes=3)
    with torch.no_grad():
        model.get_submodule("norm").running_mean.fill_(0.5)
    before = model.state_dict()
    bn_count = sum(isinstance(m, BatchNormAct2d) for m in model.modules())
    acts = [m.act for m in model.modules() if isinstance(m, BatchNormAct2d)]
    convert_sync_batchnorm(model)
    synced = [m for m in model.modules() if isinstance(m, SyncBatchNormAct2d)]
    assert len(synced) == bn_count and [m.act for m in synced] == acts
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_changes_are_listed_field_by_field():
    saved = {"spec": {"depth": 8, "stages": [[1, 4]]}, "batch_size": 64, "world_size": 1}
    now = {"spec": {"depth": 8, "stages": [[1, 8]]}, "batch_size": 32, "world_size": 2}
    changes = resume_changes(saved, now)
    assert changes == [
        "spec.stages: [[1, 4]] -> [[1, 8]]",
        "batch_size: 64 -> 32",
        "world_size: 1 -> 2",
    ]
    with pytest.raises(ResumeMismatchError, match="batch_size: 64 -> 32"):
        check_resume(saved, now, force=False)
    assert check_resume(saved, now, force=True) == changes
    assert check_resume(saved, dict(saved), force=False) == []
