"""Activation checkpointing: exact gradients, exact BN statistics, same drop-path masks."""

from __future__ import annotations

import copy
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnetv2.nn import ResidualStages, create_model
from resnetv2.nn.recompute import (
    CheckpointedStages,
    RecomputeError,
    activation_checkpointing,
    checkpoint_modules,
    enable_activation_checkpointing,
    resolve_segments,
)

torch.set_num_threads(1)


def _batch(n=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def _train_step(model, x, y, seed=123):
    """One SGD step; returns the loss, the gradients and the state afterwards."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(seed)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    return loss.detach(), grads, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same_step(reference, other, x, y):
    loss_a, grads_a, state_a = _train_step(reference, x, y)
    loss_b, grads_b, state_b = _train_step(other, x, y)
    assert torch.equal(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-5, atol=1e-6, msg=name)
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        # Running statistics and num_batches_tracked included: the recomputation must not
        # update batch norm a second time.
        torch.testing.assert_close(state_b[name], state_a[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("segments", [None, 1, 2, 3, "sqrt", -1])
@pytest.mark.parametrize("model_args", [(20, {}), (29, {"block": "bottleneck"})])
def test_checkpointed_step_equals_plain_step(segments, model_args):
    depth, options = model_args
    torch.manual_seed(0)
    plain = create_model(depth, **options)
    ckpt = enable_activation_checkpointing(copy.deepcopy(plain), segments)
    assert isinstance(ckpt.stages, CheckpointedStages)
    x, y = _batch()
    _assert_same_step(plain, ckpt, x, y)


def test_running_stats_updated_exactly_once():
    torch.manual_seed(0)
    plain = create_model(20)
    ckpt = enable_activation_checkpointing(copy.deepcopy(plain))
    x, y = _batch()
    for model in (plain, ckpt):
        F.cross_entropy(model(x), y).backward()
    first = ckpt.stages[0].blocks[0].norm2
    assert first.num_batches_tracked.item() == 1
    torch.testing.assert_close(first.running_mean, plain.stages[0].blocks[0].norm2.running_mean)
    torch.testing.assert_close(first.running_var, plain.stages[0].blocks[0].norm2.running_var)


def test_bare_checkpoint_would_update_running_stats_twice():
    """Guards the premise of the fix: torch's recomputation does touch BN buffers."""
    torch.manual_seed(0)
    block = create_model(20).stages[0].blocks[0]
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False).sum().backward()
    assert block.norm2.num_batches_tracked.item() == 2
    block2 = create_model(20).stages[0].blocks[0]
    checkpoint_modules([block2], x).sum().backward()
    assert block2.norm2.num_batches_tracked.item() == 1


def test_drop_path_recomputation_uses_the_same_mask():
    torch.manual_seed(0)
    plain = create_model(20, drop_path_rate=0.8)
    ckpt = enable_activation_checkpointing(copy.deepcopy(plain), 2)
    x, y = _batch(n=8)
    _assert_same_step(plain, ckpt, x, y)
    # The check above can fail: with different masks the gradients differ.
    _, grads_a, _ = _train_step(copy.deepcopy(plain), x, y, seed=1)
    _, grads_b, _ = _train_step(copy.deepcopy(plain), x, y, seed=2)
    assert any(not torch.allclose(grads_a[k], grads_b[k]) for k in grads_a)


def test_eval_mode_norms_keep_using_running_stats():
    """Fine-tuning with frozen BN (eval mode, gradients on) stays exact."""
    torch.manual_seed(0)
    plain = create_model(20)
    plain.train()
    F.cross_entropy(plain(_batch()[0]), _batch()[1]).backward()  # non-trivial running stats
    plain.zero_grad()
    plain.eval()
    ckpt = enable_activation_checkpointing(copy.deepcopy(plain), None)
    x, y = _batch(seed=3)
    _assert_same_step(plain, ckpt, x, y)


def test_no_grad_forward_and_toggling_off():
    torch.manual_seed(0)
    plain = create_model(20).eval()
    ckpt = enable_activation_checkpointing(copy.deepcopy(plain), 2)
    x, _ = _batch()
    with torch.no_grad():
        assert torch.equal(plain(x), ckpt(x))
    assert activation_checkpointing(ckpt) == 2
    assert list(ckpt.state_dict()) == list(plain.state_dict())
    enable_activation_checkpointing(ckpt, 0)
    assert type(ckpt.stages) is nn.Sequential
    assert activation_checkpointing(ckpt) is False
    enable_activation_checkpointing(ckpt, None)
    assert activation_checkpointing(ckpt) is None


def test_models_own_flag_delegates_to_exact_checkpointing():
    model = create_model(20)
    model.set_grad_checkpointing(True)
    assert activation_checkpointing(model) is None  # per unit
    x = torch.randn(2, 3, 8, 8)
    model(x).sum().backward()
    bn = model.stages[0].blocks[0].norm1
    assert bn.num_batches_tracked.item() == 1  # not updated again by the recomputation
    model.set_grad_checkpointing(False)
    assert activation_checkpointing(model) is False


def test_works_inside_user_networks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), ResidualStages(8, depth=20))
    ckpt = enable_activation_checkpointing(copy.deepcopy(net), 2)
    x = torch.randn(2, 3, 8, 8)
    net(x).sum().backward()
    ckpt(x).sum().backward()
    for (name, a), b in zip(net.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("bad", [-2, 1.5, "many", [2]])
def test_invalid_segments_rejected(bad):
    with pytest.raises(RecomputeError):
        enable_activation_checkpointing(create_model(20), bad)


def test_resolve_segments():
    assert resolve_segments(None, 9) is None
    assert resolve_segments(-1, 9) is None
    assert resolve_segments(0, 9) is False
    assert resolve_segments(False, 9) is False
    assert resolve_segments("sqrt", 333) == 18
    assert resolve_segments(50, 9) == 9


def test_non_resnet_rejected():
    with pytest.raises(RecomputeError, match="no ResNetV2"):
        enable_activation_checkpointing(nn.Linear(2, 2))


def _deep_step(depth, batch=2, size=8):
    torch.manual_seed(0)
    model = enable_activation_checkpointing(create_model(depth), "sqrt")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = _batch(n=batch, size=size)
    before = model.stages[0].blocks[0].conv1.weight.detach().clone()
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.stages[0].blocks[0].conv1.weight)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    return elapsed


def test_depth_2000_trains_with_checkpointing():
    assert _deep_step(2000) < 120  # 666 bottleneck units; a few seconds on a laptop core


@pytest.mark.slow
def test_depth_10001_trains_with_checkpointing():
    assert _deep_step(10001) < 300  # 3,333 units; see docs/bench-memory.md for timings
