"""``resnetv2 train`` in subprocesses: defaults, refusals, SIGTERM + exact resume, DDP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from resnetv2.cli import main
from resnetv2.io import CheckpointManager, load_weights

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args, cwd=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "resnetv2", "train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def test_no_arguments_trains_digits_into_a_fresh_run_folder(tmp_path, monkeypatch, capsys):
    # The default command, shortened to one epoch of a tiny net to keep the test fast.
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--epochs", "1"]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("digits-")
    assert f"run folder: runs/{runs[0].name}" in capsys.readouterr().out
    assert main(["train", *TINY, "--epochs", "1"]) == 0
    assert len(list((tmp_path / "runs").iterdir())) == 2  # never reuses a folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "cifar-papr"], "did you mean 'cifar-paper'"),
        (["--depth", "7"], "depth"),
        (["--data", "/nonexistent/folder"], "unknown data source"),
        (["--val-split", "1.5"], "val_split"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main(["train", *args, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_sigterm_checkpoints_mid_epoch_and_resume_is_bit_exact(tmp_path):
    # Batch 4: 360 steps per epoch. The signal is sent shortly after epoch 1's summary, so
    # it lands inside epoch 2 (the summary is printed right after epoch 1's checkpoint).
    steps = 360
    args = [
        *TINY,
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--deterministic",
        "--drop-path-rate",
        "0.1",
    ]
    straight = run_cli(*args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "resnetv2", "train", *args, "--out", str(tmp_path / "b")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if line.startswith("epoch 1/2"):
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err
    latest = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest()
    position = latest.metadata["position"]
    assert latest.metadata["epoch"] == 1 and 0 < position < steps  # mid-epoch 2
    assert latest.step == steps + position
    resumed = run_cli("--resume", str(tmp_path / "b"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    a, _ = load_weights(tmp_path / "a" / "model.safetensors")
    b, _ = load_weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["val_acc"] == rb["val_acc"] and ra["val_loss"] == rb["val_loss"]


def test_resume_with_changed_batch_size_exits_2_listing_the_change(tmp_path):
    first = run_cli(*TINY, "--epochs", "1", "--out", str(tmp_path / "r"))
    assert first.returncode == 0, first.stderr
    again = run_cli("--resume", str(tmp_path / "r"), "--batch-size", "32", "--quiet")
    assert again.returncode == 2
    assert "batch_size: 64 -> 32" in again.stderr and "--resume-force" in again.stderr
    assert "Traceback" not in again.stderr


def test_ddp_two_processes_match_one_process(tmp_path):
    """2 gloo processes with the same global batch as 1 process.

    Data order and augmentation are identical (both are seeded per global batch); what
    differs is BatchNorm: each process normalises its half-batch with its own statistics,
    and dropout/drop-path masks differ. So weights are not equal, but accuracy after two
    epochs must agree closely: we allow 3 points (~11 of 359 images; runs with different
    seeds of this setup spread by about that much). Evaluation counts must be exactly 359.
    """
    args = [*TINY, "--widths", "8,16,32", "--epochs", "2", "--batch-size", "64"]
    single = run_cli(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(free_port()),
        "-m",
        "resnetv2",
        "train",
        *args,
        "--out",
        str(tmp_path / "two"),
    ]
    double = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert one["val_count"] == two["val_count"] == 359
    assert two["world_size"] == 2
    assert abs(one["val_acc"] - two["val_acc"]) <= 0.03
    assert double.stdout.count("epoch 2/2") == 1  # only rank 0 logs


def test_ddp_resume_after_sigterm_is_bit_exact(tmp_path):
    """2 gloo processes: SIGTERM mid-epoch (torchrun forwards it), resume under torchrun,
    and the final weights equal an uninterrupted 2-process run's."""
    args = [*TINY, "--epochs", "2", "--batch-size", "8", "--deterministic"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(port, *extra):
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(port),
            "-m",
            "resnetv2",
            "train",
            *args,
            *extra,
        ]

    straight = subprocess.run(
        torchrun(free_port(), "--out", str(tmp_path / "a")),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr[-3000:]
    proc = subprocess.Popen(
        torchrun(free_port(), "--out", str(tmp_path / "b")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if line.startswith("epoch 1/2"):
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    latest = CheckpointManager(tmp_path / "b" / "checkpoints").load_latest()
    assert latest is not None, err[-3000:]
    assert latest.metadata["epoch"] == 1 and 0 < latest.metadata["position"] < 180, err[-3000:]
    resumed = subprocess.run(
        torchrun(free_port(), "--resume", str(tmp_path / "b")),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, _ = load_weights(tmp_path / "a" / "model.safetensors")
    b, _ = load_weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _folder(root, classes, per_class=4, size=8):
    from PIL import Image

    generator = torch.Generator().manual_seed(len(classes))
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.rand(size, size, 3, generator=generator) * 40 + 30 + 60 * label
            Image.fromarray(pixels.byte().numpy()).save(root / name / f"{i}.png")
    return str(root)


FOLDER = ["--val-split", "0.34", "--batch-size", "4", "--augment", "none", "--deterministic"]


def test_fine_tune_a_run_folder_with_a_frozen_backbone(tmp_path, capsys):
    two = _folder(tmp_path / "two", "ab")
    three = _folder(tmp_path / "three", "xyz")
    assert (
        main(
            [
                "train",
                *TINY,
                *FOLDER,
                "--epochs",
                "1",
                "--data",
                two,
                "--out",
                str(tmp_path / "src"),
            ]
        )
        == 0
    )
    args = ["--threads", "1", "--quiet", *FOLDER, "--epochs", "1", "--data", three]
    ft = ["--init-weights", str(tmp_path / "src"), "--freeze", "backbone"]
    assert main(["train", *args, *ft, "--out", str(tmp_path / "ft")]) == 0
    source, _ = load_weights(tmp_path / "src" / "model.safetensors")
    tuned, meta = load_weights(tmp_path / "ft" / "model.safetensors")
    assert source["head.fc.weight"].shape[0] == 2 and tuned["head.fc.weight"].shape[0] == 3
    for key in (k for k in source if not k.startswith("head.")):
        assert torch.equal(source[key], tuned[key]), key  # params and BN statistics
    assert meta["class_names"] == ["x", "y", "z"]
    config = (tmp_path / "ft" / "config.yaml").read_text()
    assert "freeze: backbone" in config and "depth: null" in config  # the weights' own net
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["init_weights"]["source"] == str(tmp_path / "src")
    # The source's preprocessing became the data defaults (its mean/std, not the new data's).
    _, source_meta = load_weights(tmp_path / "src" / "model.safetensors")
    assert meta["preprocessing"]["mean"] == pytest.approx(source_meta["preprocessing"]["mean"])


def test_fine_tune_a_timm_state_dict_file(tmp_path):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = tmp_path / "resnetv2_18.safetensors"
    save_file(timm.create_model("resnetv2_18").state_dict(), str(weights))
    three = _folder(tmp_path / "three", "xyz", per_class=3)
    args = ["--threads", "1", "--quiet", "--data", three, "--val-split", "0.34"]
    args += ["--batch-size", "6", "--epochs", "1", "--input-size", "32", "--deterministic"]
    ft = ["--init-weights", str(weights), "--backbone-lr-scale", "0.1"]
    assert main(["train", *args, *ft, "--out", str(tmp_path / "ft")]) == 0
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["epochs"] == 1 and results["init_weights"]["backbone_lr_scale"] == 0.1
    _, meta = load_weights(tmp_path / "ft" / "model.safetensors")
    from resnetv2.spec import ResNetV2Spec

    spec = ResNetV2Spec.from_dict(meta["spec"])
    assert spec.num_classes == 3 and spec.depth == 18
    assert meta["preprocessing"]["input_size"] == [32, 32]
    from resnetv2.convert.timm import timm_preprocessing

    timm_mean = timm_preprocessing("resnetv2_18")["mean"]  # the weights' normalisation
    assert meta["preprocessing"]["mean"] == pytest.approx(list(timm_mean))


def test_offline_timm_name_exits_2_with_one_line(tmp_path):
    env_extra = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    proc = subprocess.run(
        [sys.executable, "-m", "resnetv2", "train", "--init-weights", "timm:resnetv2_50"]
        + ["--out", str(tmp_path / "r"), "--quiet", "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "timm:resnetv2_50" in err and "--init-weights resnetv2_50.safetensors" in err


def test_checkpoint_activations_flag(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", *TINY, "--epochs", "1", "--checkpoint-activations", "--out", str(out)]
    assert main(args) == 0
    assert "checkpoint_activations: sqrt" in (out / "config.yaml").read_text()
    args = ["train", *TINY, "--epochs", "1", "--checkpoint-activations", "unit"]
    assert main([*args, "--out", str(out) + "2"]) == 0
    assert "checkpoint_activations: -1" in (tmp_path / "r2" / "config.yaml").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--checkpoint-activations", "many", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "'sqrt', 'unit' or a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, recipe",
    [
        ([], "digits"),
        (["--data", "digits"], "digits"),
        (["--data", "photos/", "--val-split", "0.2"], "images"),
        (["--data", "cifar10"], "images"),
        (["--init-weights", "run/", "--data", "photos/"], "finetune"),
        (["--recipe", "seed", "--data", "photos/"], "seed"),
    ],
)
def test_recipe_chosen_when_none_is_named(argv, recipe):
    from resnetv2.cli import build_parser
    from resnetv2.cli.train import build_config

    config = build_config(build_parser().parse_args(["train", *argv]))
    assert config.name == recipe
    if recipe == "images":
        assert config.data.augment == "auto" and config.train.threads is None


def test_units_alone_replace_the_recipes_depth():
    # A depth-20 recipe with `--units 2,2,2` is the 14-layer basic net the user described,
    # not a 20-layer bottleneck net that also has two units per stage.
    from resnetv2.cli import build_parser
    from resnetv2.cli.train import build_config

    argv = ["train", "--recipe", "cifar-cpu", "--units", "2,2,2", "--widths", "32,64,128"]
    spec = build_config(build_parser().parse_args(argv)).build_spec()
    assert spec.block == "basic" and spec.depth == 14
    assert [s.width for s in spec.stages] == [32, 64, 128]
    both = build_config(build_parser().parse_args([*argv, "--depth", "20"]))
    assert both.build_spec().block == "bottleneck"  # an explicit depth still picks the block


@pytest.mark.slow
def test_ddp_budget_run_ends_on_every_process_at_the_same_step(tmp_path):
    """Each process plans from its own clock; they must agree, or one would wait forever in
    the next all-reduce for a process that has stopped."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["--master-port", str(free_port()), "-m", "resnetv2", "train", *TINY]
    cmd += ["--time", "20s", "--batch-size", "32", "--out", str(tmp_path / "two")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    last = CheckpointManager(tmp_path / "two" / "checkpoints").load_latest()
    assert results["world_size"] == 2 and last.step == results["budget"]["planned_steps"]


def test_accuracy_per_flop_flags_map_to_their_config_keys(capsys):
    # Issue 19's techniques, each a general option with a flag.
    from resnetv2.cli import build_parser
    from resnetv2.cli.train import build_config

    argv = ["train", "--flip", "alternate", "--lookahead", "--lookahead-steps", "4"]
    argv += ["--lookahead-alpha", "0.3", "--bn-momentum", "0.4", "--norm-bias-lr-scale", "64"]
    argv += ["--whiten-stem", "frozen", "--schedule", "linear", "--val-tta", "flip-crop"]
    c = build_config(build_parser().parse_args(argv))
    assert (c.data.flip, c.model.whiten_stem, c.schedule.name) == ("alternate", "frozen", "linear")
    assert (c.train.lookahead, c.train.lookahead_steps, c.train.lookahead_alpha) == (True, 4, 0.3)
    assert (c.train.bn_momentum, c.optim.norm_bias_lr_scale) == (0.4, 64.0)
    assert c.train.val_tta == "flip-crop"
    for bad in (["--flip", "sometimes"], ["--whiten-stem", "yes"], ["--val-tta", "rotate"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["train", *bad])
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err
