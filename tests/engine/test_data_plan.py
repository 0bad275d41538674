"""The plan from the data (engine/data_plan.py): each decision, and that a given flag wins."""

from __future__ import annotations

import argparse
import logging

import pytest
import torch
from PIL import Image

from resnetv2.cli import build_parser
from resnetv2.cli.train import build_config
from resnetv2.config import apply_overrides, load_recipe
from resnetv2.engine import data_plan as dp
from resnetv2.engine.data_plan import DataFacts


def facts(per_class=(80, 80, 80), size=(256, 256), has_val=True):
    return DataFacts(class_counts=tuple(per_class), image_size=size, has_val=has_val)


def keys(choices):
    return {c.key: c.value for c in choices}


# ------------------------------------------------------------------ the decisions
def test_large_photos_get_the_size_the_net_was_built_for():
    got = keys(dp.plan_input((256, 256), stem_type="conv3x3", num_stages=3, size_given=False))
    assert got == {"data.image_size": dp.CIFAR_NET_SIZE}  # and the CIFAR stem stays
    wide = keys(dp.plan_input((240, 320), stem_type="conv3x3", num_stages=3, size_given=False))
    h, w = wide["data.image_size"]
    assert h == dp.CIFAR_NET_SIZE and w == round(320 * dp.CIFAR_NET_SIZE / 240)  # aspect kept
    # behind a stem that divides by 4, a 3-stage net gets 4x the size
    down = keys(
        dp.plan_input((256, 256), stem_type="conv7x7_maxpool", num_stages=3, size_given=False)
    )
    assert down == {"data.image_size": dp.CIFAR_NET_SIZE_DOWNSAMPLED}


def test_small_images_keep_their_size_and_stem():
    assert dp.plan_input((32, 32), stem_type="conv3x3", num_stages=3, size_given=False) == []
    assert dp.plan_input((64, 48), stem_type="conv3x3", num_stages=3, size_given=False) == []
    # a size the user gave is never changed; the stem follows it
    assert dp.plan_input((32, 32), stem_type="conv3x3", num_stages=3, size_given=True) == []
    only_stem = dp.plan_input((200, 200), stem_type="conv3x3", num_stages=3, size_given=True)
    assert keys(only_stem) == {"model.options.stem_type": "conv7x7_maxpool"}


def test_never_the_cifar_stem_at_full_resolution():
    for stages in (3, 4):
        for size in ((65, 65), (256, 256), (480, 640)):
            planned = keys(
                dp.plan_input(size, stem_type="conv3x3", num_stages=stages, size_given=False)
            )
            h, w = dp._as_hw(planned.get("data.image_size", size))
            cifar_stem = planned.get("model.options.stem_type", "conv3x3") == "conv3x3"
            assert not (cifar_stem and min(h, w) > dp.SMALL_IMAGE), (stages, size, planned)


def test_imagenet_nets_keep_their_stem_at_up_to_224_px():
    got = keys(
        dp.plan_input((500, 500), stem_type="conv7x7_maxpool", num_stages=4, size_given=False)
    )
    assert got == {"data.image_size": dp.IMAGENET_NET_SIZE}
    # a 4-stage net with the CIFAR stem (e.g. cifar-fast's ResNet-18) gets the ImageNet stem
    cifar18 = keys(dp.plan_input((500, 500), stem_type="conv3x3", num_stages=4, size_given=False))
    assert cifar18 == {"data.image_size": 224, "model.options.stem_type": "conv7x7_maxpool"}
    assert (
        dp.plan_input((200, 200), stem_type="conv7x7_maxpool", num_stages=4, size_given=False) == []
    )


def test_small_data_gets_a_smaller_batch_and_a_scaled_lr():
    got = keys(dp.plan_batch(240, epochs=5, batch_size=128, lr=0.1, lr_given=False))
    batch = got["data.batch_size"]
    assert dp.MIN_BATCH <= batch < 128
    assert got["optim.lr"] == pytest.approx(0.1 * batch / 128)  # the linear rule
    # big data already gives enough steps: nothing to plan
    assert dp.plan_batch(45_000, epochs=5, batch_size=128, lr=0.1, lr_given=False) == []
    # an lr the user gave is kept
    assert "optim.lr" not in keys(
        dp.plan_batch(240, epochs=5, batch_size=128, lr=0.1, lr_given=True)
    )


def test_steps_grow_towards_the_target():
    choice = keys(dp.plan_batch(2000, epochs=5, batch_size=128, lr=0.1, lr_given=False))
    batch = choice["data.batch_size"]
    assert 5 * -(-2000 // batch) >= dp.TARGET_STEPS > 5 * -(-2000 // (2 * batch))


def test_validation_split_default_is_larger_for_small_folders():
    assert dp.plan_val_split(300).value == dp.VAL_SPLIT_SMALL
    assert dp.plan_val_split(20_000).value == dp.VAL_SPLIT
    assert "--val-split" in dp.plan_val_split(300).reason


def test_finetuning_raises_the_head_lr_and_keeps_the_backbone_lr():
    frozen = keys(dp.plan_finetune(freeze="backbone", lr=0.01, keep=frozenset()))
    assert frozen == {"optim.lr": pytest.approx(0.01 * dp.HEAD_LR_SCALE)}
    full = keys(dp.plan_finetune(freeze="none", lr=0.01, keep=frozenset()))
    assert full["optim.lr"] * full["model.backbone_lr_scale"] == pytest.approx(0.01)
    assert dp.plan_finetune(freeze="none", lr=0.01, keep=frozenset({"optim.lr"})) == []


def test_warnings_for_few_steps_few_images_and_unbalanced_classes():
    ok = dp.plan_warnings(
        facts((500, 400)), steps=1000, class_names=["a", "b"], class_weights="none"
    )
    assert ok == []
    few = dp.plan_warnings(facts((10, 300)), steps=20, class_names=["a", "b"], class_weights="none")
    text = " ".join(few)
    assert "20 optimiser steps" in text and "'a' has only 10" in text
    assert "--class-weights balanced" in text
    weighted = dp.plan_warnings(
        facts((100, 300)), steps=1000, class_names=["a", "b"], class_weights="balanced"
    )
    assert weighted == []


def test_balanced_class_weights():
    assert dp.balanced_class_weights([10, 30]) == pytest.approx([2.0, 2 / 3])
    assert dp.balanced_class_weights([7, 7, 7]) == pytest.approx([1.0, 1.0, 1.0])
    labels = torch.tensor([0] * 10 + [1] * 30)
    weight = dp.class_weight_tensor("balanced", labels, 2)
    assert weight.tolist() == pytest.approx([2.0, 2 / 3])
    # the weighted loss counts each class as much: the mean over a class-balanced batch
    # of per-class losses equals the weighted mean over the unbalanced labels
    logits = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
    per = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert loss.item() == pytest.approx(((per[:10].mean() + per[10:].mean()) / 2).item())
    assert dp.class_weight_tensor("none", labels, 2) is None


# ------------------------------------------------------------------ the plan, with flags
def cli_config(*argv):
    args = build_parser("train").parse_args(["train", *argv])
    assert isinstance(args, argparse.Namespace)
    return build_config(args)


BASE = ["--data", "photos", "--epochs", "5"]
PLANNED_FLAGS = [
    ("data.image_size", ["--input-size", "24"], 24),
    ("data.batch_size", ["--batch-size", "64"], 64),
    ("optim.lr", ["--lr", "0.3"], 0.3),
    ("data.val_split", ["--val-split", "0.3"], 0.3),
]


def value(config, key):
    node = config
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def test_the_stem_yields_to_its_flag():
    config = cli_config(*BASE, "--input-size", "200")
    planned, plan = dp.plan_run(config, facts())
    assert planned.model.options["stem_type"] == "conv7x7_maxpool"
    config = cli_config(*BASE, "--input-size", "200", "--stem-type", "conv3x3")
    planned, plan = dp.plan_run(config, facts())
    assert planned.model.options["stem_type"] == "conv3x3"
    assert "model.options.stem_type" not in plan.overrides()


def test_the_plan_changes_each_of_these_keys_at_defaults():
    planned, plan = dp.plan_run(cli_config(*BASE), facts(has_val=False))
    assert {key for key, *_ in PLANNED_FLAGS} <= set(plan.overrides())
    assert planned.plan.auto is False  # the saved config is final: resume plans nothing
    assert all(line.startswith("--") for line in plan.lines())  # each names its flag


@pytest.mark.parametrize("key, flag, given", PLANNED_FLAGS)
def test_a_flag_the_user_passed_wins(key, flag, given):
    config = cli_config(*BASE, *flag)
    assert key in config.plan.keep
    planned, plan = dp.plan_run(config, facts(has_val=False))
    assert value(planned, key) == given and key not in plan.overrides()


@pytest.mark.parametrize(
    "key, flag, given",
    [
        ("optim.lr", ["--lr", "0.002"], 0.002),
        ("model.backbone_lr_scale", ["--backbone-lr-scale", "0.5"], 0.5),
    ],
)
def test_fine_tuning_flags_win(key, flag, given):
    config = cli_config(*BASE, "--init-weights", "w.safetensors", *flag)
    planned, plan = dp.plan_run(config, facts(size=(32, 32)))
    assert value(planned, key) == given and key not in plan.overrides()
    defaults, plan = dp.plan_run(cli_config(*BASE, "--init-weights", "w.safetensors"), facts())
    assert "optim.lr" in plan.overrides() and "data.image_size" not in plan.overrides()


def test_a_config_file_keeps_its_own_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {depth: 20}\ndata: {source: photos, batch_size: 128}\n")
    config = cli_config("--config", str(path))
    assert {"data.batch_size", "model.depth"} <= set(config.plan.keep)
    planned, plan = dp.plan_run(config, facts(has_val=False))
    assert planned.data.batch_size == 128 and "data.image_size" in plan.overrides()


def test_plan_off_changes_nothing():
    config = apply_overrides(load_recipe("images"), {"plan.auto": False})
    log = logging.getLogger("test-plan-off")
    assert dp.plan_for_run(config, device=torch.device("cpu"), log=log) is config


def test_memory_veto_halves_the_batch():
    config = cli_config(*BASE, "--epochs", "100")  # enough steps: the batch stays 128
    calls = []

    def fits(candidate):
        calls.append(candidate.data.batch_size)
        return candidate.data.batch_size <= 32

    planned, plan = dp.plan_run(config, facts(per_class=(5000,) * 3), memory_fits=fits)
    assert calls == [128, 64, 32] and planned.data.batch_size == 32
    assert planned.optim.lr == pytest.approx(config.optim.lr / 4)
    assert "memory" in " ".join(plan.lines())


# ------------------------------------------------------------------ files and the run log
def write_folder(root, per_class=(12, 12, 12), size=(80, 96)):
    generator = torch.Generator().manual_seed(0)
    for label, count in enumerate(per_class):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(count):
            pixels = (torch.rand(*size, 3, generator=generator) * 60 + 60 * label).byte()
            Image.fromarray(pixels.numpy()).save(root / f"c{label}" / f"{i}.png")


def test_folder_facts_reads_counts_and_size(tmp_path):
    write_folder(tmp_path / "d", per_class=(10, 20, 30))
    config = apply_overrides(load_recipe("images"), {"data.source": str(tmp_path / "d")})
    found, names = dp.folder_facts(config.data)
    assert names == ["c0", "c1", "c2"] and found.image_size == (80, 96)
    assert found.num_images == 60 and not found.has_val
    assert found.class_counts == (8, 16, 24)  # after the planned 20 % split
    assert dp.folder_facts(load_recipe("images").data) is None  # cifar10: the recipe's


def test_the_plan_is_logged_once_in_train_log(tmp_path):
    from resnetv2.cli import main

    write_folder(tmp_path / "d", per_class=(12, 12, 4), size=(80, 96))
    argv = ["train", "--data", str(tmp_path / "d"), "--depth", "8", "--widths", "4,8,16"]
    argv += ["--epochs", "1", "--threads", "1", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("plan from the data") == 1
    assert "--val-split 0.2" in log and "--input-size 32x38" in log
    assert "--class-weights balanced" in log  # 12 vs 3 training images: unbalanced
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "image_size:\n  - 32\n  - 38" in saved and "auto: false" in saved


def test_plan_keep_must_name_config_keys():
    from resnetv2.config import ConfigError

    assert apply_overrides(load_recipe("images"), {"plan.keep": ["data.batch_size"]})
    with pytest.raises(ConfigError, match="plan.keep: 'batch_size' is not a config key"):
        apply_overrides(load_recipe("images"), {"plan.keep": ["batch_size"]})


def test_a_kept_section_keeps_the_keys_below_it():
    config = apply_overrides(cli_config(*BASE), {"plan.keep": ["model.options", "data"]})
    planned, plan = dp.plan_run(config, facts(has_val=True))
    assert plan.choices == [] and planned.model.options == config.model.options


def test_resume_of_an_older_run_plans_nothing(tmp_path):
    """A run folder written before planning existed: its config.yaml has no plan section,
    and --resume must not re-plan it (the batch or stem would change under the checkpoint)."""
    import yaml

    from resnetv2.config import config_to_dict

    run = tmp_path / "run"
    (run / "checkpoints" / "step-000000001").mkdir(parents=True)
    old = config_to_dict(cli_config(*BASE, "--val-split", "0.2"))
    del old["plan"]
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    config = cli_config("--resume", str(run))
    planned, plan = dp.plan_run(config, facts())
    assert plan.choices == [], plan.lines()


def test_class_weights_reach_the_training_loss(tmp_path):
    from resnetv2.engine import train

    write_folder(tmp_path / "d", per_class=(16, 4), size=(8, 8))
    losses = {}
    for mode in ("none", "balanced"):
        config = apply_overrides(
            load_recipe("images"),
            {
                "data.source": str(tmp_path / "d"),
                "data.val_split": 0.25,
                "model.depth": 8,
                "model.options": {"widths": [4, 8, 16]},
                "train.epochs": 1,
                "train.threads": 1,
                "train.deterministic": True,
                "train.class_weights": mode,
            },
        )
        result = train(config, out=tmp_path / mode, progress=False, quiet=True)
        losses[mode] = result.history[0]["train_loss"]
    assert losses["none"] != pytest.approx(losses["balanced"], rel=1e-4)
