"""``resnetv2 train`` errors in the command line's words: flags, with the config key beside
them for YAML users (issue 18, item 5). Each refusal is one line, exit 2, no traceback."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from resnetv2.cli import main

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet", "--epochs", "1"]


def write_folder(root, sizes=((8, 8),) * 4, classes=("a", "b")):
    generator = torch.Generator().manual_seed(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            pixels = (torch.rand(h, w, 3, generator=generator) * 255).byte()
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")
    return root


def refused(argv, capsys) -> str:
    code = main(["train", *argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith("resnetv2 train: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--val-split", "1.5"], "--val-split (data.val_split) must be a fraction in (0, 1)"),
        (["--val-split", "0"], "--val-split (data.val_split)"),
        (["--batch-size", "0"], "--batch-size (data.batch_size) must be an integer in 1.."),
        (["--epochs", "0"], "--epochs (train.epochs) must be in 1.."),
        (["--workers", "-1"], "--workers (data.workers) must be an integer in 0.."),
        (["--lr", "-1"], "--lr (optim.lr) must be a positive number"),
        (["--momentum", "1.5"], "--momentum (optim.momentum) must be in [0, 1)"),
        (["--weight-decay", "-1"], "--weight-decay (optim.weight_decay) must be >= 0"),
        (["--label-smoothing", "1"], "--label-smoothing (train.label_smoothing)"),
        (["--grad-clip", "0"], "--grad-clip (train.grad_clip) must be > 0"),
        (["--ema-decay", "1"], "--ema-decay (train.ema_decay) must be in (0, 1)"),
        (["--threads", "0"], "--threads (train.threads) must be an integer in 1.."),
        (["--warmup-epochs", "-1"], "--warmup-epochs (schedule.warmup_epochs) must be >= 0"),
        (["--keep-checkpoints", "0"], "--keep-checkpoints (callbacks.keep_checkpoints)"),
        (
            ["--backbone-lr-scale", "0.5"],
            "--freeze (model.freeze) and --backbone-lr-scale (model.backbone_lr_scale) "
            "need --init-weights (model.init_weights)",
        ),
    ],
)
def test_range_errors_name_the_flag_and_the_key(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert words in refused([*TINY, *argv, "--out", "run"], capsys)


def test_yaml_errors_name_the_key_too(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("model: {depth: 8}\ndata: {source: digits, val_split: 1.5}\n")
    err = refused(["--config", str(path)], capsys)
    assert "data.val_split" in err and "--val-split" in err


def test_validation_source_errors_name_the_flags(tmp_path, capsys):
    folder = write_folder(tmp_path / "d")
    err = refused(
        [*TINY, "--data", str(folder), "--val-split", "0.5", "--val-data", str(folder)], capsys
    )
    assert "--val-data (data.val_data) and --val-split (data.val_split) are both set" in err
    err = refused([*TINY, "--data", "digits", "--val-data", str(folder)], capsys)
    assert "--val-data (data.val_data) applies to folder sources only" in err
    # with the plan off (a config of one's own), a folder without validation data
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{depth: 8}}\ndata: {{source: {folder}}}\nplan: {{auto: false}}\n")
    err = refused(["--config", str(config), "--out", str(tmp_path / "r")], capsys)
    assert "needs validation data: pass --val-split F (data.val_split" in err
    assert "--val-data DIR (data.val_data)" in err
    assert "val_dir=" not in err and "val_split=" not in err


def test_one_class_folder_hint_names_the_flags(tmp_path, capsys):
    root = tmp_path / "d"
    write_folder(root / "train", classes=("only",))
    err = refused([*TINY, "--data", str(root), "--out", str(tmp_path / "r")], capsys)
    assert "--data (data.source)" in err and "--val-data (data.val_data)" in err
    assert "val_dir=" not in err


def test_mixed_sizes_warning_names_the_flag(tmp_path, capsys):
    folder = write_folder(tmp_path / "d", sizes=((8, 8), (8, 8), (8, 8), (10, 12)))
    run = tmp_path / "r"
    assert (
        main(["train", *TINY, "--data", str(folder), "--val-split", "0.5", "--out", str(run)]) == 0
    )
    for text in (capsys.readouterr().err, (run / "train.log").read_text()):
        assert "pass --input-size (data.image_size) to choose the size" in text
        assert "pass image_size" not in text


def test_flag_words_leave_named_flags_alone():
    from resnetv2.cli.train import flag_words
    from resnetv2.engine.data import config_words

    assert flag_words("set data.channels (--channels)") == "set data.channels (--channels)"
    assert (
        flag_words("data.batch_size must be >= 1") == "--batch-size (data.batch_size) must be >= 1"
    )
    # a key inside another key or already in brackets is not a key of its own
    assert flag_words("model.options.depth: x") == "model.options.depth: x"
    assert flag_words("(train.epochs)") == "(train.epochs)"
    assert (
        config_words("pass image_size to choose") == "pass --input-size (data.image_size) to choose"
    )
