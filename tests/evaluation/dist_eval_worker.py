"""One rank of the 2-process evaluation test (run as a script by test_eval_distributed.py).

Usage: python dist_eval_worker.py RANK WORLD INIT_FILE OUT_DIR
"""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

import resnetv2
from resnetv2.evaluation import EvaluationError, evaluate

N = 11


def model_and_data():
    torch.manual_seed(0)
    model = resnetv2.create_model(8, num_classes=3, stem_width=4, widths=[4, 4, 4])
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(N, 3, 8, 8, generator=g), torch.randint(0, 3, (N,), generator=g)


def summary(result):
    return {
        "count": result.count,
        "top1": result.top1,
        "top5": result.top5,
        "loss": result.loss,
        "confusion": result.confusion.tolist(),
    }


def main(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, images, labels = model_and_data()
        sharded_tensors = evaluate(model, (images, labels), batch_size=4)
        shard = Subset(TensorDataset(images, labels), list(range(rank, N, world)))
        sharded_loader = evaluate(
            model, DataLoader(shard, batch_size=4), class_names=["0", "1", "2"]
        )
        dataset = TensorDataset(images, labels)
        padded = DataLoader(
            dataset, batch_size=4, sampler=DistributedSampler(dataset, shuffle=False)
        )
        try:
            evaluate(model, padded)
            refused = False
        except EvaluationError:
            refused = True
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(
                {
                    "tensors": summary(sharded_tensors),
                    "loader": summary(sharded_loader),
                    "padded_refused": refused,
                },
                handle,
            )
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
