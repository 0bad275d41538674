"""Data throughput vs model throughput on the cached-tensor path.

What: images per second that the data layer delivers to the trainer — ``TensorBatchLoader``
cutting shuffled batches from the cached uint8 tensor, applying the ``standard`` He et al.
augmentation (pad 4, random crop, flip) and normalising — compared with the training
throughput (forward + backward + SGD step) of He et al.'s CIFAR ResNet-20 at batch 128 on
32x32 images. Target: data / model >= 10, i.e. the loader never starves the model.
On what: this machine's CPU; data from ``--data DIR`` (a class-folder tree such as the
CIFAR-10 JPEGs extracted to /tmp/cifar10/train, decoded once into the cache) or, by
default, 50,000 synthetic 32x32 images. Runs: ``--epochs`` loader epochs (median) and
``--steps`` timed training steps after one warm-up step.

    python benchmarks/data_throughput.py [--data /tmp/cifar10/train] [--epochs 3] [--steps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from train_overhead import synthetic_bundle  # noqa: E402

from resnetv2.nn import create_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="class-folder tree (default: synthetic images)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data:
        from resnetv2.data import load_data

        bundle = load_data(args.data, val_split=0.1, progress=False)
        source = f"{args.data} ({bundle.num_train:,} train images, cached)"
    else:
        bundle = synthetic_bundle(50_000)
        source = "50,000 synthetic 32x32 images"
    loader = bundle.train_loader(args.batch, "standard", seed=0)
    data_rates = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        count = sum(labels.shape[0] for _, labels in loader)
        data_rates.append(count / (time.perf_counter() - started))

    model = create_model(20, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = [loader.batch(0, i) for i in range(args.steps + 1)]
    step_times = []
    for images, labels in batches:
        started = time.perf_counter()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - started)
    model_rate = args.batch / statistics.median(step_times[1:])
    data_rate = statistics.median(data_rates)
    print(f"data: {source}; batch {args.batch}; {torch.get_num_threads()} threads")
    print("| pipeline | img/s |")
    print("|---|---|")
    print(
        f"| loader + standard augmentation + normalise (median of {args.epochs} epochs) "
        f"| {data_rate:,.0f} |"
    )
    print(f"| ResNet-20 training step (median of {args.steps}) | {model_rate:,.0f} |")
    print(f"| ratio data / model | {data_rate / model_rate:.1f} |")


if __name__ == "__main__":
    main()
