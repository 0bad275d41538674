"""Fault injection on outputs and weights files (issue 11, items 9, 13 and 15).

Unwritable output locations end in one line naming the path and the reason (exit 2, no
traceback); a path named with ``--out`` is never overwritten without ``--force``; a weights
file whose metadata cannot describe its model is refused at load.
"""

import os

import pytest

from resnetv2.cli import main
from resnetv2.io import load_weights, save_weights

TINY = ["--depth", "8", "--widths", "4,8,16", "--threads", "1", "--quiet", "--epochs", "1"]


@pytest.fixture
def unwritable(tmp_path):
    """A folder nothing can be created in: a read-only folder, or (as root, who may write
    anywhere on a normal filesystem) the top of sysfs."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not os.path.isdir("/sys") or os.access("/sys", os.W_OK) and _can_create("/sys"):
        pytest.skip("no unwritable location available to root here")
    yield __import__("pathlib").Path("/sys")


def _can_create(folder):
    try:
        os.mkdir(os.path.join(folder, "resnetv2-probe"))
    except OSError:
        return False
    os.rmdir(os.path.join(folder, "resnetv2-probe"))
    return True


COMMANDS = {
    "train": lambda run, image, out: ["train", *TINY, "--out", str(out / "run")],
    "evaluate": lambda run, image, out: ["evaluate", str(run), "-q", "--out", str(out / "ev")],
    "predict": lambda run, image, out: [
        "predict",
        str(run),
        str(image),
        "--out",
        str(out / "p.csv"),
    ],
    "plot": lambda run, image, out: ["plot", str(run), "--out", str(out / "c.png")],
    "export": lambda run, image, out: ["export", str(run), "--out", str(out / "m.onnx")],
}


@pytest.mark.parametrize(
    "command",
    ["train", "evaluate", "predict", "plot", pytest.param("export", marks=pytest.mark.slow)],
)
def test_unwritable_output_is_one_line_exit_2(
    command, run, image, unwritable, capsys, one_line_error
):
    # Item 9: each command used to end in a raw OSError traceback.
    if command == "export":
        pytest.importorskip("onnx")
    assert main(COMMANDS[command](run, image, unwritable)) == 2
    line = one_line_error(str(unwritable))
    assert any(
        reason in line
        for reason in ("Permission denied", "Operation not permitted", "Read-only file system")
    ), line


def test_plot_out_is_not_overwritten_without_force(run, tmp_path, capsys, one_line_error):
    # Item 15: plot and evaluate overwrote an explicit --out, unlike export and predict.
    target = tmp_path / "curves.png"
    target.write_bytes(b"mine")
    assert main(["plot", str(run), "--out", str(target)]) == 2
    one_line_error("exists; pass --force")
    assert target.read_bytes() == b"mine"
    assert main(["plot", str(run), "--out", str(target), "--force"]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_out_is_not_overwritten_without_force(run, tmp_path, capsys, one_line_error):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "metrics.json").write_text("mine")
    args = ["evaluate", str(run), "-q", "--device", "cpu", "--out", str(out)]
    assert main(args) == 2
    one_line_error("exists and is not empty; pass --force")
    assert (out / "metrics.json").read_text() == "mine"
    assert main([*args, "--force"]) == 0
    assert (out / "metrics.json").read_text() != "mine"
    # The default RUN/eval is the run's own and is replaced on each evaluation.
    assert main(["evaluate", str(run), "-q", "--device", "cpu"]) == 0
    assert main(["evaluate", str(run), "-q", "--device", "cpu"]) == 0


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"input_size": [0, 0]}, "invalid preprocessing metadata"),
        ({"input_size": [200000, 200000]}, "pixels per image"),
        ({"mean": [0.5, 0.5]}, "invalid preprocessing metadata"),
        ({"class_names": ["zero", "one"]}, "2 class_names for a model with 10 classes"),
        ({"class_names": "0123456789"}, "class_names must be a list of strings"),
    ],
)
def test_weights_metadata_is_validated_at_load(
    run, image, tmp_path, capsys, change, needle, one_line_error
):
    # Item 13: predict called every good image corrupt; short class_names fell back silently.
    state, metadata = load_weights(run / "model.safetensors")
    if "class_names" in change:
        metadata["class_names"] = change["class_names"]
    else:
        metadata["preprocessing"] = {**metadata["preprocessing"], **change}
    metadata = {k: v for k, v in metadata.items() if k not in ("format_version", "tensors_sha256")}
    edited = tmp_path / "edited.safetensors"
    save_weights(edited, state, metadata)
    assert main(["predict", str(edited), str(image)]) == 2
    one_line_error(needle)
