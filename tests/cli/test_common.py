"""One command-line vocabulary: --device, --input-size, -q/--progress, unknown-flag hints."""

import io
import json
import sys

import pytest

from resnetv2.cli import build_parser, main
from resnetv2.cli.common import show_progress
from resnetv2.config import list_recipes

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--epochs", "1"]


def _exit_2(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["train", "--model", "resnetv2_50"], "--model (did you mean --preset or --depth?)"),
        (["train", "--num-classes", "3"], "--num-classes (did you mean --classes?)"),
        (["summary", "--depth", "8", "--image-size", "32"], "did you mean --input-size?"),
        (["evaluate", "RUN", "--gpu"], "--gpu (did you mean --device?)"),
        (["train", "--epohcs", "3"], "--epohcs (did you mean --epochs?)"),
        (["predict", "RUN", "x.png", "--no-progress-bar"], "did you mean --no-progress?"),
    ],
)
def test_unknown_flags_get_the_closest_valid_one(capsys, argv, hint):
    err = _exit_2(capsys, *argv)
    assert err.startswith(f"resnetv2 {argv[0]}: error: unrecognized argument ")
    assert hint in err


def test_flags_that_match_nothing_still_fail_in_one_line(capsys):
    err = _exit_2(capsys, "depths", "--zzzzzz")
    assert "unrecognized argument --zzzzzz (see `resnetv2 depths --help`)" in err


@pytest.mark.parametrize("command", [["train"], ["evaluate", "RUN"], ["predict", "RUN", "x"]])
def test_every_model_running_command_shares_device_and_progress_flags(command):
    parser = build_parser()
    args = parser.parse_args(command)
    assert getattr(args, "device", None) in ("auto", None)  # train: None = the config's auto
    assert args.quiet is False and args.progress is None
    args = parser.parse_args([*command, "-q", "--no-progress", "--device", "cpu"])
    assert args.quiet is True and args.progress is False
    assert parser.parse_args([*command, "--progress"]).progress is True


@pytest.mark.parametrize("command", [["evaluate", "RUN"], ["predict", "RUN", "x"]])
def test_device_defaults_to_auto(command):
    assert build_parser().parse_args(command).device == "auto"


@pytest.mark.parametrize(
    ("flags", "tty", "expected"),
    [
        ([], False, False),  # piped or logged: whole lines only
        ([], True, True),
        (["--progress"], False, True),
        (["--no-progress"], True, False),
        (["-q"], True, False),
        (["-q", "--progress"], True, False),
    ],
)
def test_progress_bars_only_on_a_terminal_unless_asked(monkeypatch, flags, tty, expected):
    stream = io.StringIO()
    stream.isatty = lambda: tty
    monkeypatch.setattr(sys, "stderr", stream)
    assert show_progress(build_parser().parse_args(["evaluate", "RUN", *flags])) is expected


def test_piped_train_and_evaluate_output_is_whole_lines(tmp_path, capsys):
    # capsys replaces stderr with a non-terminal, as a pipe or a log file would be.
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    assert main(["evaluate", str(run)]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.out and "\r" not in captured.err
    assert "epoch 1/1" in captured.out + captured.err


@pytest.mark.parametrize(
    ("value", "shape"), [("32", [32, 32]), ("24x40", [24, 40]), ("24×40", [24, 40])]
)
def test_one_input_size_flag_takes_n_or_hxw(capsys, value, shape):
    assert main(["summary", "--depth", "8", "--input-size", value, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == shape


@pytest.mark.parametrize("value", ["0", "32x", "ax3", "1x2x3"])
def test_bad_input_sizes_are_refused(capsys, value):
    err = _exit_2(capsys, "summary", "--depth", "8", "--input-size", value)
    assert "expected N or HxW" in err


def test_train_input_size_sets_the_config(tmp_path):
    from resnetv2.cli.train import build_config

    parser = build_parser()
    square = build_config(parser.parse_args(["train", "--input-size", "16"]))
    assert square.data.image_size == 16
    oblong = build_config(parser.parse_args(["train", "--input-size", "16x24"]))
    assert oblong.data.image_size == [16, 24]


@pytest.mark.parametrize(
    "command",
    [
        "depths", "summary", "train", "compare", "evaluate", "plot", "report", "predict",
        "export", "convert",
    ],
)  # fmt: skip
def test_help_has_no_raw_markup(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for markup in ("``", ":func:", ":class:", ":mod:", "**"):
        assert markup not in out, (command, markup)


def test_train_help_lists_every_shipped_recipe(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"Recipes: {', '.join(list_recipes())}." in out
    assert "finetune" in list_recipes() and "images" in list_recipes()


def test_a_named_command_builds_only_its_own_parser(capsys):
    # `resnetv2 predict …` should not pay for importing the other eight commands.
    assert list(build_parser("predict").commands) == ["predict"]
    assert len(build_parser().commands) == len(build_parser("no-such-command").commands) > 1
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0 and "--engine" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["predic", "x"])  # a misspelt command still meets the whole parser
    assert exc.value.code == 2 and "predict" in capsys.readouterr().err
