"""Hostile and sloppy config files: alias bombs, duplicate keys, syntax errors, huge values.

Each must end in one :class:`ConfigError` line naming the problem, quickly and in bounded
memory (issue 11, item 4 and the "Also" list).
"""

import time

import pytest

from resnetv2.config import ConfigError, config_from_dict, load_config
from resnetv2.config.yamlfile import MAX_NODES, parse_yaml_text, short_repr

BOMB = "\n".join(
    [
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
        *(
            f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "optim: {lr: *i}",
    ]
)


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    # Nine levels of nine aliases: 9**9 = 387 million strings if expanded.
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values") as info:
        load_config(path)
    assert time.perf_counter() - started < 5
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_a_few_aliases_still_work():
    data = parse_yaml_text("base: &b {lr: 0.05}\noptim: *b\n")
    assert data["optim"] == {"lr": 0.05}


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="recursive"):
        parse_yaml_text("a: &a [1, *a]\n")


def test_duplicate_keys_are_refused_with_their_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("optim:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'lr' at line 3 \(first at line 2\)"):
        load_config(path)


def test_syntax_error_is_one_line_with_its_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 3, column 1") as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_huge_values_are_never_formatted_whole():
    huge = ["x" * 1000] * 1000
    with pytest.raises(ConfigError) as info:
        config_from_dict({"optim": {"lr": huge}})
    assert len(str(info.value)) < 300
    assert len(short_repr("y" * 10**6)) < 100


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"seed": 1180591620717411303424}}, "out of range"),
        ({"train": {"seed": -1}}, "train.seed must be in 0.."),
        ({"train": {"epochs": "1e29"}}, "must be an integer"),
        ({"train": {"epochs": 10**12}}, "train.epochs must be in 1..1,000,000"),
        ({"optim": {"lr": "1e999"}}, "finite number"),
        ({"optim": {"lr": 10**400}}, "finite number"),
        ({"name": "../../../x"}, "one plain folder name"),
        ({"name": "/tmp/x"}, "one plain folder name"),
        ({"name": ".hidden"}, "one plain folder name"),
        ({"name": ""}, "one plain folder name"),
    ],
)
def test_out_of_range_values_are_refused(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"depth": 8}, **data})


def test_largest_seed_is_accepted():
    config = config_from_dict({"model": {"depth": 8}, "train": {"seed": 2**63 - 1}})
    assert config.train.seed == 2**63 - 1
