"""evaluate(): model state untouched, every sample counted once, data forms, distributed sums."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import resnetv2
from resnetv2.evaluation import EvaluationError, evaluate


def _tiny_model(**options):
    torch.manual_seed(0)
    return resnetv2.create_model(8, num_classes=4, stem_width=4, widths=[4, 8, 8], **options)


def _data(n=13, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 4, (n,), generator=g)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_bn_statistics_and_training_flags_unchanged():
    model = _tiny_model()
    images, labels = _data()
    # Move the running stats away from their initial values so "unchanged" is meaningful.
    model.train()
    with torch.no_grad():
        model(images)
    model.stages[1].eval()  # a user-frozen sub-module must stay frozen
    flags = {name: m.training for name, m in model.named_modules()}
    before = _snapshot(model)
    evaluate(model, (images, labels), batch_size=5)
    after = _snapshot(model)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert model.training and not model.stages[1].training
    # in eval mode the flags are kept too
    model.eval()
    evaluate(model, (images, labels))
    assert not any(m.training for m in model.modules())


def test_flags_restored_when_the_model_raises():
    model = _tiny_model()
    model.train()
    bad = torch.randn(3, 5, 8, 8)  # wrong channel count: the forward pass fails
    with pytest.raises(RuntimeError):
        evaluate(model, (bad, torch.zeros(3, dtype=torch.long)))
    assert all(m.training for m in model.modules())


def test_eval_mode_is_used():
    """Dropout active in training mode would make two evaluations differ."""
    model = _tiny_model(dropout=0.5)
    model.train()
    images, labels = _data()
    first = evaluate(model, (images, labels))
    second = evaluate(model, (images, labels))
    assert first.loss == second.loss
    model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(images), labels).item()
    assert first.loss == pytest.approx(expected, rel=1e-5)


def test_loader_and_tensors_agree_and_count_each_sample_once():
    model = _tiny_model()
    images, labels = _data(n=13)
    direct = evaluate(model, (images, labels), batch_size=5)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    via_loader = evaluate(model, loader)
    numpy_input = evaluate(model, (images.numpy(), labels.numpy()), batch_size=13)
    for result in (direct, via_loader, numpy_input):
        assert result.count == 13
        assert int(result.confusion.sum()) == 13
        assert np.array_equal(result.confusion.sum(axis=1), np.bincount(labels, minlength=4))
    assert np.array_equal(direct.confusion, via_loader.confusion)
    assert direct.top1 == via_loader.top1 == numpy_input.top1
    assert direct.loss == pytest.approx(via_loader.loss, rel=1e-6)


def test_uint8_images_use_the_models_recorded_normalisation():
    model = _tiny_model()
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    model.metadata = {
        "class_names": ["w", "x", "y", "z"],
        "preprocessing": {"mean": mean, "std": std},
    }
    g = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 256, (9, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 4, (9,), generator=g)
    result = evaluate(model, (raw, labels))
    normalised = (raw.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    expected = evaluate(model, (normalised, labels))
    assert result.class_names == ("w", "x", "y", "z")
    assert np.array_equal(result.confusion, expected.confusion)
    assert result.loss == pytest.approx(expected.loss, rel=1e-5)
    del model.metadata
    with pytest.raises(EvaluationError, match="uint8"):
        evaluate(model, (raw, labels))


def test_preprocess_is_applied_per_batch():
    model = _tiny_model()
    images, labels = _data()
    halved = evaluate(model, (images, labels), preprocess=lambda x: x * 0.5)
    expected = evaluate(model, (images * 0.5, labels))
    assert halved.loss == pytest.approx(expected.loss, rel=1e-6)


class _OwnThreadsForward:
    """A forward with threads of its own (as the onnxruntime runner declares itself)."""

    own_threads = True

    def __init__(self, model):
        self.model, self.threads_seen = model, []

    def __call__(self, images):
        self.threads_seen.append(torch.get_num_threads())
        return self.model(images)


def test_tensor_ops_beside_an_engine_with_its_own_threads_run_on_one_thread():
    model = _tiny_model()
    images, labels = _data()
    forward = _OwnThreadsForward(model)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = evaluate(model, (images, labels), forward=forward, tta="flip")
        assert forward.threads_seen and set(forward.threads_seen) == {1}
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(previous)
    assert result.top1 == evaluate(model, (images, labels), tta="flip").top1


def test_empty_data_is_an_error():
    with pytest.raises(EvaluationError, match="empty"):
        evaluate(_tiny_model(), (torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long)))
