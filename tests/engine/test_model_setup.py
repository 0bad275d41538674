"""Fine-tuning (``model.init_weights``, freeze modes, backbone lr) and activation
checkpointing inside the training engine."""

import pytest
import torch
from PIL import Image

from resnetv2 import save_model
from resnetv2.engine import train
from resnetv2.engine.trainer import Trainer
from resnetv2.io import load_weights
from resnetv2.nn import create_model

PRE = {
    "input_size": [8, 8],
    "in_channels": 3,
    "mean": [0.25, 0.5, 0.75],
    "std": [0.2, 0.3, 0.4],
    "interpolation": "bilinear",
}


def _write_folder(root, classes=("a", "b", "c"), per_class=6, size=10):
    generator = torch.Generator().manual_seed(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = 30 + 80 * label
            pixels = (torch.rand(size, size, 3, generator=generator) * 40 + base).byte()
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 5-class depth-8 weights file with random (not default) BN statistics, and a
    3-class 10x10 folder dataset to fine-tune it on."""
    root = tmp_path_factory.mktemp("ft")
    torch.manual_seed(1)
    model = create_model(8, widths=[4, 8, 16], num_classes=5)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_mean", "running_var")):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(7)
    path = save_model(model, root / "src.safetensors", class_names=list("vwxyz"), preprocessing=PRE)
    _write_folder(root / "data")
    state, _ = load_weights(path)
    return path, root / "data", state


def _config(make_config, source, **overrides):
    path, data, _ = source
    model = {"init_weights": str(path)}  # replaces the tiny config's architecture
    for key in [k for k in overrides if k.startswith("model.")]:
        model[key[len("model.") :]] = overrides.pop(key)
    base = {
        "model": model,
        "data.source": str(data),
        "data.val_split": 0.34,
        "data.batch_size": 4,
        "data.augment": "none",
        "train.epochs": 1,
    }
    return make_config(**{**base, **overrides})


def _backbone(state):
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def test_init_weights_give_a_new_head_and_the_source_backbone(tmp_path, make_config, source):
    config = _config(make_config, source)
    trainer = Trainer(config, out=tmp_path / "run", quiet=True, progress=False)
    trainer._build()
    state = trainer.parts.model.state_dict()
    assert state["head.fc.weight"].shape == (3, 16)
    assert trainer.parts.spec.num_classes == 3 and trainer.parts.spec.depth == 8
    for key, value in _backbone(source[2]).items():
        assert torch.equal(state[key], value), key
    # The weights' preprocessing is the data default: 8x8 inputs, their mean/std.
    assert trainer.parts.config.data.image_size == 8 and tuple(trainer.parts.data.image_size) == (
        8,
        8,
    )
    assert list(trainer.parts.data.mean) == pytest.approx(PRE["mean"])
    assert list(trainer.parts.data.std) == pytest.approx(PRE["std"])


@pytest.mark.parametrize("ema", [False, True])
def test_freeze_backbone_trains_the_head_only(tmp_path, make_config, source, ema):
    config = _config(make_config, source, **{"model.freeze": "backbone", "train.ema": ema})
    trainer = Trainer(config, out=tmp_path / "run", quiet=True, progress=False)
    result = trainer.fit()
    head = [p for n, p in trainer.parts.model.named_parameters() if n.startswith("head.")]
    optimised = [p for g in trainer.parts.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in optimised} == {id(p) for p in head}
    trained, meta = load_weights(result.run_dir / "model.safetensors")
    for key, value in _backbone(source[2]).items():  # parameters AND BN running statistics
        assert torch.equal(trained[key], value), key
    assert trained["head.fc.bias"].abs().sum() > 0  # a fresh head starts with zero bias
    assert meta["init_weights"]["source"] == str(source[0])
    assert meta["init_weights"]["freeze"] == "backbone"
    assert result.results["init_weights"]["pretrained_classes"] == 5
    trainable = sum(p.numel() for p in head)
    frozen = trainer.parts.num_params - trainable
    header = (result.run_dir / "train.log").read_text(encoding="utf-8")
    assert f"({trainable:,} trainable, {frozen:,} frozen)" in header and frozen > 0


def test_backbone_lr_scale_keeps_its_ratio_through_the_schedule(tmp_path, make_config, source):
    config = _config(
        make_config,
        source,
        **{"model.backbone_lr_scale": 0.1, "schedule.warmup_epochs": 0.5, "optim.lr": 0.05},
    )
    trainer = Trainer(config, out=tmp_path / "run", quiet=True, progress=False)
    trainer._build()
    groups = trainer.parts.optimizer.param_groups
    assert [(g["name"], g["weight_decay"] > 0) for g in groups] == [
        ("backbone", True),
        ("backbone", False),
        ("head", True),
        ("head", False),
    ]
    assert sum(len(g["params"]) for g in groups) == len(list(trainer.parts.model.parameters()))
    for step in range(trainer.parts.steps_per_epoch):
        base = trainer.parts.lr.apply(trainer.parts.optimizer, step)
        lrs = {g["name"]: g["lr"] for g in groups}
        assert lrs["head"] == base and lrs["backbone"] == pytest.approx(0.1 * base, rel=1e-12)


def test_fine_tuning_resume_is_bit_exact(tmp_path, make_config, source):
    config = _config(make_config, source, **{"model.backbone_lr_scale": 0.1, "train.epochs": 2})
    straight = train(config, out=tmp_path / "a", quiet=True, progress=False)
    paused = train(config, out=tmp_path / "b", quiet=True, progress=False, stop_after_epochs=1)
    assert paused.paused
    # The original config (no image size / mean / std) resumes: the run's values are reused
    # and the init weights are not read again.
    source[0].rename(source[0].with_suffix(".moved"))
    try:
        resumed = train(config, resume=tmp_path / "b", quiet=True, progress=False)
    finally:
        source[0].with_suffix(".moved").rename(source[0])
    a, _ = load_weights(straight.run_dir / "model.safetensors")
    b, meta = load_weights(resumed.run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]
    assert meta["init_weights"]["backbone_lr_scale"] == 0.1


def test_dense_head_with_init_weights(tmp_path, make_config, source):
    config = _config(make_config, source, **{"model.options": {"head": "dense", "head_hidden": 6}})
    result = train(config, out=tmp_path / "run", quiet=True, progress=False)
    state, meta = load_weights(result.run_dir / "model.safetensors")
    assert meta["spec"]["head"] == "dense" and meta["spec"]["num_classes"] == 3
    assert state["head.hidden.weight"].shape == (6, 16)


def test_a_different_backbone_is_refused(tmp_path, make_config, source):
    from resnetv2.errors import ResNetV2Error

    config = _config(
        make_config, source, **{"model.depth": 8, "model.options": {"widths": [8, 8, 8]}}
    )
    with pytest.raises(ResNetV2Error, match="different backbone"):
        train(config, out=tmp_path / "run", quiet=True, progress=False)


@pytest.mark.parametrize("segments", ["unit", 2])
def test_activation_checkpointing_gives_the_same_run(tmp_path, make_config, segments):
    base = {"train.epochs": 1, "data.batch_size": 128, "model.options": {"widths": [4, 8, 16]}}
    plain = train(make_config(**base), out=tmp_path / "plain", quiet=True, progress=False)
    ckpt = make_config(**base, **{"train.checkpoint_activations": segments})
    assert ckpt.train.checkpoint_activations == (-1 if segments == "unit" else 2)
    checked = train(ckpt, out=tmp_path / "ckpt", quiet=True, progress=False)
    a, _ = load_weights(plain.run_dir / "model.safetensors")
    b, _ = load_weights(checked.run_dir / "model.safetensors")
    # Same loss curve and, on CPU in deterministic mode, bit-identical weights and BN
    # statistics: the recomputation runs the same kernels on the same inputs.
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in checked.history]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grayscale_weights_fine_tune_on_rgb_folder(tmp_path):
    """1-channel weights (digits) on PNGs that decode to RGB: the data follow the weights."""
    source = create_model(8, block="basic", widths=[4, 8, 16], in_channels=1, num_classes=10)
    prep = {"input_size": [8, 8], "in_channels": 1, "mean": [0.3], "std": [0.3]}
    save_model(source, tmp_path / "gray.safetensors", preprocessing=prep)
    folder = tmp_path / "rgb"
    for c, colour in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        (folder / f"c{c}").mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8), tuple(v // (i + 1) for v in colour)).save(
                folder / f"c{c}" / f"{i}.png"
            )
    from resnetv2.cli import main

    argv = ["train", "--init-weights", str(tmp_path / "gray.safetensors"), "--data", str(folder)]
    argv += ["--val-split", "0.5", "--epochs", "1", "--threads", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    state, meta = load_weights(tmp_path / "run" / "model.safetensors")
    assert meta["spec"]["in_channels"] == 1 and meta["spec"]["num_classes"] == 3
    assert meta["preprocessing"]["in_channels"] == 1
    assert state["stem.conv.weight"].shape[1] == 1
