"""The one "did you mean" helper and the one integer-list parser."""

import pytest

from resnetv2.errors import SpecError, suggest
from resnetv2.options import make_spec, parse_int_list


def test_suggest_names_the_closest_valid_value():
    assert suggest("cifar-papr", ["digits", "cifar-paper"]) == " (did you mean 'cifar-paper'?)"
    assert suggest("zzz", ["digits", "cifar-paper"]) == ""


def test_suggest_cutoff_controls_how_far_it_reaches():
    assert suggest("lrate", ["lr"]) == ""
    assert suggest("lrate", ["lr"], cutoff=0.5) == " (did you mean 'lr'?)"


@pytest.mark.parametrize("text", ["3,4,6,3", "3 4 6 3", " 3, 4 ,6,3 "])
def test_int_lists_are_parsed_in_one_place(text):
    assert parse_int_list(text) == [3, 4, 6, 3]


@pytest.mark.parametrize("text", ["", "3,x", "1.5"])
def test_bad_int_lists_are_refused(text):
    with pytest.raises(SpecError, match="units"):
        parse_int_list(text, "units")


def test_spec_options_and_the_cli_share_the_parser(capsys):
    from resnetv2.cli import main

    assert make_spec(20, units="2, 2, 2").units_per_stage == (2, 2, 2)
    with pytest.raises(SystemExit):
        main(["summary", "--depth", "20", "--units", "2,two"])
    assert "must be integers like 3,4,6,3" in capsys.readouterr().err
