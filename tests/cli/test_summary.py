import json
import subprocess
import sys

import pytest

from resnetv2.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # flag values are checked by argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_json_has_required_fields(capsys):
    code, out, _ = run_cli(capsys, "summary", "--depth", "164", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["depth"] == 164
    assert data["params"] == 1_703_258
    assert data["units_per_stage"] == [18, 18, 18]
    assert data["flops"] > 0
    assert [s["name"] for s in data["stages"]] == ["stem", "stage1", "stage2", "stage3", "head"]
    assert sum(s["params"] for s in data["stages"]) == data["params"]


def test_summary_table_for_preset(capsys):
    code, out, _ = run_cli(capsys, "summary", "--preset", "resnetv2_50")
    assert code == 0
    assert "25,549,352" in out
    assert "2048×7×7" in out


def test_summary_options_reach_the_spec(capsys):
    code, out, _ = run_cli(
        capsys, "summary", "--preset", "seed", "--depth", "110", "--classes", "100", "--json"
    )
    data = json.loads(out)
    assert code == 0
    assert data["units_per_stage"] == [12, 12, 12]
    assert data["spec"]["num_classes"] == 100 and data["spec"]["head"] == "dense"
    code, out, _ = run_cli(
        capsys, "summary", "--units", "1,2,3", "--block", "basic", "--no-final-norm", "--json"
    )
    assert json.loads(out)["spec"]["final_norm"] is False


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["summary", "--depth", "13"], "nearest"),
        (["summary", "--preset", "resnet50"], "did you mean 'resnetv2_50'"),
        (["summary", "--depth", "1000000000"], "between"),
        (["summary"], "--depth"),
        (["summary", "--depth", "20", "--input-size", "0"], "input-size"),
    ],
)
def test_user_mistakes_exit_2_with_message(capsys, argv, hint):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert hint in err
    assert "Traceback" not in err and out == ""


def test_argparse_choice_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["summary", "--depth", "20", "--block", "bottlenek"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_entry_point_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "resnetv2", "summary", "--depth", "13"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cannot be built" in proc.stderr
