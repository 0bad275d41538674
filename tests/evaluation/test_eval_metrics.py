"""EvalAccumulator / evaluate on a model with known logits: every number computed by hand."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from resnetv2.evaluation import EvalAccumulator, EvaluationError, evaluate


class TableModel(nn.Module):
    """Returns ``table[i]`` for an image whose single pixel holds ``i``: fixed, known logits."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].long()]


def _images(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)


# 6 samples, 3 classes. Predictions (argmax): 0, 1, 1, 2, 0, 2; labels: 0, 1, 0, 2, 2, 1.
TABLE3 = torch.tensor(
    [
        [3.0, 1.0, 0.0],
        [0.0, 2.0, 1.0],
        [1.0, 4.0, 0.0],
        [0.0, 0.0, 5.0],
        [2.0, 0.0, 1.0],
        [0.0, 1.0, 2.0],
    ]
)
LABELS3 = torch.tensor([0, 1, 0, 2, 2, 1])


def test_hand_computed_metrics_three_classes():
    result = evaluate(
        TableModel(TABLE3), (_images(6), LABELS3), class_names=["a", "b", "c"], batch_size=4
    )
    assert result.count == 6
    assert result.top1 == pytest.approx(3 / 6)  # samples 0, 1, 3 are right
    # top-k is capped at the number of classes: every label is in the top 3.
    assert result.topk == 3
    assert result.top5 == 1.0
    expected_loss = float(nn.functional.cross_entropy(TABLE3, LABELS3))
    assert result.loss == pytest.approx(expected_loss, rel=1e-6)
    # rows: true class, columns: predicted
    assert result.confusion.tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert int(result.confusion.sum()) == 6
    by_name = {m.name: m for m in result.per_class}
    assert by_name["a"].precision == pytest.approx(1 / 2)  # predicted a: samples 0 (a), 4 (c)
    assert by_name["a"].recall == pytest.approx(1 / 2)
    assert by_name["b"].precision == pytest.approx(1 / 2)
    assert by_name["c"].recall == pytest.approx(1 / 2)
    assert by_name["c"].support == 2
    assert by_name["b"].f1 == pytest.approx(0.5)
    assert "a" in result.report and "macro avg" in result.report
    # With k >= the class count top-k is always 100 %: the report leaves it out.
    assert "top-1: 50.00%" in result.format() and "top-3" not in result.format()


def test_top5_with_more_classes():
    # 7 classes; the label's rank decides top-5 membership.
    logits = torch.tensor([[7.0, 6, 5, 4, 3, 2, 1]] * 4)
    labels = torch.tensor([0, 4, 5, 6])  # ranks 1, 5, 6, 7
    acc = EvalAccumulator(7)
    acc.update(logits, labels)
    result = acc.result()
    assert result.topk == 5
    assert result.top1 == pytest.approx(1 / 4)
    assert result.top5 == pytest.approx(2 / 4)
    assert result.class_names == tuple(str(i) for i in range(7))
    assert "top-5: 50.00%" in result.format()


def test_batching_does_not_change_the_result():
    rng = torch.Generator().manual_seed(0)
    table = torch.randn(23, 5, generator=rng)
    labels = torch.randint(0, 5, (23,), generator=rng)
    results = [
        evaluate(TableModel(table), (_images(23), labels), batch_size=b) for b in (1, 4, 23, 100)
    ]
    for r in results[1:]:
        assert r.count == 23
        assert r.top1 == results[0].top1 and r.top5 == results[0].top5
        assert np.array_equal(r.confusion, results[0].confusion)
        assert r.loss == pytest.approx(results[0].loss, rel=1e-12)


def test_split_accumulators_sum_to_the_whole():
    """What all_reduce does across processes: summing the shards' states is exact."""
    rng = torch.Generator().manual_seed(1)
    logits = torch.randn(17, 4, generator=rng)
    labels = torch.randint(0, 4, (17,), generator=rng)
    whole = EvalAccumulator(4)
    whole.update(logits, labels)
    parts = [EvalAccumulator(4) for _ in range(3)]
    for k, part in enumerate(parts):
        part.update(logits[k::3], labels[k::3])
    loss = sum(p.state()[0] for p in parts)
    counts = sum(p.state()[1] for p in parts)
    assert np.array_equal(counts, whole.state()[1])
    assert loss == pytest.approx(whole.state()[0], rel=1e-12)


def test_all_reduce_without_distributed_is_a_noop():
    acc = EvalAccumulator(3)
    acc.update(TABLE3, LABELS3)
    before = acc.state()
    acc.all_reduce()
    after = acc.state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1])


def test_to_dict_is_json_and_complete():
    result = evaluate(TableModel(TABLE3), (_images(6), LABELS3), class_names=["a", "b", "c"])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["count"] == 6
    assert data["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert data["class_names"] == ["a", "b", "c"]
    assert set(data["per_class"]) == {"a", "b", "c"}
    assert math.isclose(data["per_class"]["a"]["precision"], 0.5)
    assert data["macro_avg"]["support"] == 6


def test_zero_division_gives_zero_not_a_warning():
    # class 2 is never predicted and never true: its precision/recall are 0, not NaN.
    acc = EvalAccumulator(3)
    acc.update(torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]]), torch.tensor([0, 1]))
    metrics = acc.result(["x", "y", "z"]).per_class[2]
    assert (metrics.precision, metrics.recall, metrics.f1, metrics.support) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (torch.zeros(2, 4), torch.tensor([0, 1]), "shape"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), "label 3"),
        (torch.zeros(2, 3), torch.tensor([0]), "labels"),
    ],
)
def test_bad_batches_are_rejected(logits, labels, message):
    with pytest.raises(EvaluationError, match=message):
        EvalAccumulator(3).update(logits, labels)


def test_empty_and_invalid_inputs():
    with pytest.raises(EvaluationError, match="empty"):
        EvalAccumulator(3).result()
    with pytest.raises(EvaluationError, match="num_classes"):
        EvalAccumulator(0)
    with pytest.raises(EvaluationError, match="class names"):
        evaluate(TableModel(TABLE3), (_images(6), LABELS3), class_names=["a", "b"])
    with pytest.raises(EvaluationError, match="batch_size"):
        evaluate(TableModel(TABLE3), (_images(6), LABELS3), batch_size=0)
