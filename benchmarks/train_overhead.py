"""Engine overhead: the trainer's training img/s vs a bare PyTorch loop, same model and data.

What: images per second of the engine's training loop (``Trainer._train_epoch``: loader,
lr schedule, loss, backward, step, running metrics, NaN guard, progress bookkeeping) vs a
bare ``for x, y in loader: loss(model(x), y).backward(); opt.step()`` over the same
:class:`TensorBatchLoader`, for He et al.'s CIFAR ResNet-164 (bottleneck, 1.7 M params) on
synthetic 32x32 images. Both run in this process, alternating, ``--rounds`` times; the ratio
of medians is printed. Target: engine within 3 % of the bare loop.
Also (``--cpu-settings``): the bare loop on the CIFAR depth-20 net at batch 128 with
channels_last on/off and 1/2 threads, which is how the CPU defaults were chosen.
On what: this machine's CPU (shared with other jobs while measured: read ratios, not
absolute speeds).

    python benchmarks/train_overhead.py [--depth 164] [--batch 32] [--steps 4] [--rounds 3]
    python benchmarks/train_overhead.py --cpu-settings
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from resnetv2.config import apply_overrides, load_recipe
from resnetv2.data import DataBundle
from resnetv2.engine.runtime import StopSignals
from resnetv2.engine.trainer import Trainer
from resnetv2.nn import create_model


def synthetic_bundle(n: int, size: int = 32) -> DataBundle:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return DataBundle(
        source="synthetic",
        storage="cached",
        class_names=[str(i) for i in range(10)],
        in_channels=3,
        image_size=(size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        train_labels=labels,
        val_labels=labels[:8],
        train_images=images,
        val_images=images[:8],
    )


def bare_epoch(model, optimizer, loader, channels_last: bool) -> float:
    model.train()
    started = time.perf_counter()
    count = 0
    for images, labels in loader:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count += labels.shape[0]
    return count / (time.perf_counter() - started)


def overhead(args, tmp: str) -> None:
    n = args.batch * args.steps
    bundle = synthetic_bundle(n)
    config = apply_overrides(
        load_recipe("cifar-paper"),
        {
            "model": {"depth": args.depth},
            "data.batch_size": args.batch,
            "data.source": "synthetic",
            "train.epochs": 100,
            "train.threads": args.threads,
        },
    )
    trainer = Trainer(config, out=f"{tmp}/run", quiet=True, progress=False, data=bundle)
    trainer._build()
    trainer._start_timer()
    # The bare loop gets the engine's memory format, so only the loop machinery differs.
    channels_last = trainer.parts.channels_last
    bare_model = create_model(args.depth, num_classes=10)
    if channels_last:
        bare_model = bare_model.to(memory_format=torch.channels_last)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    bare_loader = bundle.train_loader(args.batch, "standard", seed=0)
    engine_rates, bare_rates = [], []
    with StopSignals() as stop:
        # One untimed epoch each: allocator and oneDNN primitive caches warm up.
        trainer._train_epoch(0, stop)
        trainer.state.take_epoch_sums()
        bare_epoch(bare_model, bare_opt, bare_loader, channels_last)
        for r in range(args.rounds):
            trainer._train_epoch(r + 1, stop)
            _, _, images, seconds = trainer.state.take_epoch_sums()
            engine_rates.append(images / seconds)
            bare_rates.append(bare_epoch(bare_model, bare_opt, bare_loader, channels_last))
            print(
                f"round {r + 1}: engine {engine_rates[-1]:.2f} img/s, bare {bare_rates[-1]:.2f}"
                " img/s",
                flush=True,
            )
    engine, bare = statistics.median(engine_rates), statistics.median(bare_rates)
    print()
    print(
        f"depth {args.depth}, batch {args.batch}, {args.steps} steps per epoch, "
        f"{args.rounds} alternating rounds, {torch.get_num_threads()} threads, "
        f"channels_last {channels_last}"
    )
    print("| loop | img/s (median) |")
    print("|---|---|")
    print(f"| bare PyTorch | {bare:.2f} |")
    print(f"| resnetv2 engine | {engine:.2f} |")
    print(f"| engine / bare | {engine / bare:.3f} |")


def cpu_settings(args) -> None:
    bundle = synthetic_bundle(128 * 3)
    loader = bundle.train_loader(128, "standard", seed=0)
    results = {}
    threads_before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for channels_last in (False, True):
            model = create_model(20, num_classes=10)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            bare_epoch(model, optimizer, loader, channels_last)
            rates = [bare_epoch(model, optimizer, loader, channels_last) for _ in range(2)]
            results[(threads, channels_last)] = statistics.median(rates)
            print(
                f"threads {threads}, channels_last {channels_last}: "
                f"{results[(threads, channels_last)]:.0f} img/s",
                flush=True,
            )
    torch.set_num_threads(threads_before)
    print()
    print("CIFAR depth-20, batch 128, 32x32, training img/s (bare loop)")
    print("| threads | NCHW | channels_last |")
    print("|---|---|---|")
    for threads in (1, 2):
        print(f"| {threads} | {results[(threads, False)]:.0f} | {results[(threads, True)]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=164)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--cpu-settings", action="store_true")
    args = parser.parse_args()
    # One thread by default: on a shared machine a second thread makes timings noisy.
    torch.set_num_threads(args.threads)
    if args.cpu_settings:
        cpu_settings(args)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        overhead(args, tmp)


if __name__ == "__main__":
    main()
