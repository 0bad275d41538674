import json

from resnetv2.cli import main


def test_depths_json_lists_valid_depths(capsys):
    assert main(["depths", "--max", "60", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_key = {(r["depth"], r["block"]): r["units_per_stage"] for r in rows}
    assert by_key[(20, "basic")] == [3, 3, 3]
    assert by_key[(56, "bottleneck")] == [6, 6, 6]
    assert (13, "basic") not in by_key and (13, "bottleneck") not in by_key
    assert all(r["depth"] <= 60 for r in rows)


def test_depths_imagenet_auto_table(capsys):
    assert main(["depths", "--layout", "imagenet", "--block", "auto", "--max", "60"]) == 0
    out = capsys.readouterr().out
    assert "     50  bottleneck  3,4,6,3" in out
    assert "     18  basic       2,2,2,2" in out


def test_depths_bad_max_exits_2(capsys):
    assert main(["depths", "--max", "0"]) == 2
    assert "max_depth" in capsys.readouterr().err
