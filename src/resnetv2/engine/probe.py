"""A short measured probe of this machine: the memory format and CPU threads of a run.

Machines differ too much for fixed defaults: on one 2-core VM channels_last trained
ResNet-20 8–24 % faster than NCHW, on another NCHW was faster for a narrow bottleneck net,
and while other jobs share the cores one thread beats two by 2× (docs/bench-training.md).
So before a CPU run of some length, the trainer times a few real training steps of its own
model (a copy: the run's weights, statistics and random streams are untouched) on random
data of the run's shape, for each candidate setting left open (``channels_last: auto``,
``threads`` unset), rounds interleaved so a change in load hits every candidate alike, and
keeps the fastest. The probe stays within a limit: 10 s, and 2 % of a ``--time`` budget or
of the run's expected length.

``torch.compile`` is not probed: compiling takes tens of seconds on a CPU, more than such a
probe may spend, so it stays the user's choice (``--compile``).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: The most a probe may take, and its share of a budget or of the run's expected length.
PROBE_SECONDS = 10.0
PROBE_SHARE = 0.02
#: A candidate must beat the current setting by this much to replace it (noise margin).
MARGIN = 0.03
#: Runs with fewer steps than this (and no budget of at least ``MIN_BUDGET``) skip ``auto``.
MIN_STEPS = 1000
MIN_BUDGET = 60.0


@dataclass(frozen=True)
class Setting:
    """One candidate: memory format and intra-op threads."""

    channels_last: bool
    threads: int

    def label(self) -> str:
        fmt = "channels_last" if self.channels_last else "NCHW"
        return f"{fmt}, {self.threads} thread{'s' if self.threads > 1 else ''}"


@dataclass
class ProbeResult:
    """What the probe chose and what it measured (seconds per training step)."""

    chosen: Setting
    seconds: float
    timings: dict[Setting, float] = field(default_factory=dict)
    skipped: str | None = None

    def describe(self) -> str:
        if self.skipped:
            return f"machine probe skipped: {self.skipped}; {self.chosen.label()}"
        others = ", ".join(
            f"{s.label()} {t * 1000:.0f} ms"
            for s, t in sorted(self.timings.items(), key=lambda kv: kv[1])
            if s != self.chosen
        )
        return (
            f"machine probe ({self.seconds:.1f} s): {self.chosen.label()} at "
            f"{self.timings[self.chosen] * 1000:.0f} ms/step"
            + (f" (vs {others})" if others else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels_last": self.chosen.channels_last,
            "threads": self.chosen.threads,
            "seconds": round(self.seconds, 2),
            "skipped": self.skipped,
            "ms_per_step": {s.label(): round(t * 1000, 2) for s, t in self.timings.items()},
        }


def candidates(
    current: Setting, *, tune_format: bool, tune_threads: bool, cores: int
) -> list[Setting]:
    """The settings to time: the current one first, then each open alternative."""
    formats = (
        [current.channels_last, not current.channels_last]
        if tune_format
        else [current.channels_last]
    )
    threads = [current.threads]
    if tune_threads:
        threads += [n for n in (cores, 1) if n != current.threads]
    return [Setting(f, n) for f in formats for n in threads]


def choose(timings: dict[Setting, float], current: Setting) -> Setting:
    """The fastest setting, unless it beats ``current`` by less than :data:`MARGIN`."""
    best = min(timings, key=timings.get)
    if current in timings and timings[best] > timings[current] * (1 - MARGIN):
        return current
    return best


def timed_step(
    model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor, *, amp: bool, channels_last: bool
) -> float:
    """Seconds of one training step (forward, backward, optimiser) on ``x``, ``y``."""
    xs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        logits = model(xs)
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - t0


def seconds_per_step(
    model: nn.Module,
    *,
    batch_shape: tuple[int, int, int, int],
    num_classes: int,
    amp: bool,
    channels_last: bool,
    steps: int = 2,
    give_up_after: float = math.inf,
) -> float:
    """A fresh model's training step time: the fastest of ``steps`` after one warm-up step
    (or the warm-up step's own time, when it took longer than ``give_up_after`` seconds).

    Leaves the global random state as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model.train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        x = torch.randn(batch_shape)
        y = torch.randint(0, max(num_classes, 1), (batch_shape[0],))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
        warm = timed_step(model, optimizer, x, y, amp=amp, channels_last=channels_last)
        if warm > give_up_after:
            return warm
        return min(
            timed_step(model, optimizer, x, y, amp=amp, channels_last=channels_last)
            for _ in range(steps)
        )


def probe_limit(budget: float | None) -> float:
    """Seconds a probe may take: :data:`PROBE_SECONDS`, and 2 % of a budget."""
    return PROBE_SECONDS if budget is None else min(PROBE_SECONDS, PROBE_SHARE * budget)


def should_probe(
    setting: str,
    *,
    device: torch.device,
    deterministic: bool,
    resuming: bool,
    total_steps: int,
    budget: float | None,
    world_size: int = 1,
) -> str | None:
    """``None`` when the probe should run, else why not (``train.tune``: auto / on / off)."""
    if setting == "off":
        return "--no-tune"
    if device.type != "cpu":
        return f"{device.type} runs use channels_last without probing"
    if deterministic:
        return "--deterministic (thread counts change the arithmetic)"
    if resuming:
        return "resumed runs keep their first session's settings"
    if world_size > 1:
        return "multi-process runs (each process would choose for itself)"
    if setting == "auto" and total_steps < MIN_STEPS and (budget is None or budget < MIN_BUDGET):
        return f"a short run ({total_steps} steps)"
    return None


def probe(
    model: nn.Module,
    current: Setting,
    options: list[Setting],
    *,
    batch_shape: tuple[int, int, int, int],
    num_classes: int,
    amp: bool,
    limit: float,
    expected_steps: int | None = None,
) -> ProbeResult:
    """Time ``options`` on a copy of ``model``; return the choice (``current`` if skipped).

    ``limit``: seconds the probe may take at most; with ``expected_steps`` the run's expected
    length (those steps × the first measured step) lowers it to :data:`PROBE_SHARE` of that.
    """
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(batch_shape)
        y = torch.randint(0, max(num_classes, 1), (batch_shape[0],))
        copies = {}
        for fmt in {s.channels_last for s in options}:
            m = copy.deepcopy(model).train()
            if fmt:
                m = m.to(memory_format=torch.channels_last)
            else:
                m = m.to(memory_format=torch.contiguous_format)
            params = [p for p in m.parameters() if p.requires_grad]
            copies[fmt] = (m, torch.optim.SGD(params, lr=1e-6))

        def step(setting: Setting) -> float:
            torch.set_num_threads(setting.threads)
            m, opt = copies[setting.channels_last]
            return timed_step(m, opt, x, y, amp=amp, channels_last=setting.channels_last)

        try:
            warm: dict[Setting, float] = {}
            for s in options:  # first steps: allocation, kernel selection
                # A warm-up step costs about what the slowest so far did: stop before one
                # that would end past the limit, not after it.
                if warm and time.perf_counter() - started + max(warm.values()) > limit:
                    break
                warm[s] = step(s)
                if expected_steps is not None:
                    limit = min(limit, PROBE_SHARE * expected_steps * min(warm.values()))
                if time.perf_counter() - started > limit:
                    break
            per_round = sum(warm.values()) * len(options) / len(warm)
            rounds = min(3, int((limit - (time.perf_counter() - started)) // per_round))
            if rounds < 1:
                return ProbeResult(
                    current,
                    time.perf_counter() - started,
                    skipped=f"one round of {len(options)} settings takes {per_round:.1f} s, "
                    f"over its {limit:.1f} s limit",
                )
            samples: dict[Setting, list[float]] = {s: [] for s in options}
            for _ in range(rounds):
                for s in options:
                    samples[s].append(step(s))
        finally:
            torch.set_num_threads(threads_before)
    timings = {s: statistics.median(v) for s, v in samples.items()}
    return ProbeResult(choose(timings, current), time.perf_counter() - started, timings)
