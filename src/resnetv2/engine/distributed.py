"""Data-parallel training helpers: process-group set-up from ``torchrun``, exact metric sums.

``torchrun --nproc-per-node N -m resnetv2 train ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``; :func:`init_distributed` joins the group (NCCL on CUDA, gloo on CPU). Every
rank sees the same global batch order and trains on its slice of each global batch, so N
processes with global batch B follow the single-process run with batch B (up to BatchNorm
statistics, which are per process unless ``sync_bn``). Evaluation shards the validation set
into contiguous, non-padded slices and all-reduces the sums of loss, correct predictions and
sample counts, so every sample is counted exactly once (promise 5 of docs/reliability.md) —
unlike ``DistributedSampler``, which pads with repeated samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from resnetv2.nn.layers import BatchNormAct2d


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` (1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_type: str) -> DistContext:
    """Join the process group when launched by ``torchrun``; a no-op otherwise."""
    world = env_world_size()
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local_rank)


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard_range(total: int, ctx: DistContext) -> tuple[int, int]:
    """Contiguous ``[start, stop)`` of ``total`` items for this rank; sizes differ by ≤ 1 and
    the slices cover every item exactly once (no padding)."""
    base, extra = divmod(total, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return start, start + base + (1 if ctx.rank < extra else 0)


def local_slice(batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's part of a global batch."""
    if not ctx.enabled:
        return batch
    start, stop = shard_range(batch.shape[0], ctx)
    return batch[start:stop]


def all_reduce_sums(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Sum ``values`` over all ranks (float64, so counts stay exact)."""
    if not ctx.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_flag(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank if it is true on any (e.g. a stop request seen by one rank)."""
    if not ctx.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def agree_min(value: int, ctx: DistContext, device: torch.device) -> int:
    """The smallest of every rank's ``value`` (e.g. a budget plan made from each rank's
    clock: all ranks must stop at the same step, or the last all-reduce waits forever)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([float(value)], device=device, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def gather_rng_states(ctx: DistContext) -> list[torch.Tensor]:
    """Every rank's CPU RNG state (rank order), so a resume restores each rank's dropout."""
    state = torch.get_rng_state()
    if not ctx.enabled:
        return [state]
    gathered = [torch.empty_like(state) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, state)
    return gathered


class SyncBatchNormAct2d(nn.SyncBatchNorm):
    """``SyncBatchNorm`` followed by ReLU: the synchronised twin of ``BatchNormAct2d``.

    ``nn.SyncBatchNorm.convert_sync_batchnorm`` would drop the fused activation, silently
    changing the network; this keeps it and the parameter names.
    """

    def __init__(self, channels: int, eps: float = 1e-5, act: bool = True) -> None:
        super().__init__(channels, eps=eps)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return F.relu(x, inplace=True) if self.act else x


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNormAct2d`` with a :class:`SyncBatchNormAct2d` (state copied)."""
    for name, child in module.named_children():
        if isinstance(child, BatchNormAct2d):
            sync = SyncBatchNormAct2d(child.num_features, eps=child.eps, act=child.act)
            sync.momentum = child.momentum
            sync.load_state_dict(child.state_dict())
            sync.to(child.weight.device)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module


def share_run_dir(run_dir, ctx):
    """Rank 0's run folder on every rank (or its error on every rank, so none hangs)."""
    if not ctx.enabled:
        return run_dir
    from pathlib import Path

    import torch.distributed as dist

    from resnetv2.errors import ResNetV2Error

    holder = [str(run_dir) if isinstance(run_dir, Path) else run_dir]
    if isinstance(run_dir, ResNetV2Error):
        holder = ["error:" + str(run_dir)]
    dist.broadcast_object_list(holder, src=0)
    if holder[0].startswith("error:"):
        raise ResNetV2Error(holder[0][len("error:") :])
    return Path(holder[0])
