"""Checker declarations: option parsing and the rules a declaration must follow."""

from __future__ import annotations

import pytest

from healthcheck import Checker, Condition, Option, Result
from healthcheck._declaration import parse_bool


@pytest.mark.parametrize("word", ["1", "t", "T", "true", "TRUE", "True"])
def test_go_true_words(word):
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["0", "f", "F", "false", "FALSE", "False"])
def test_go_false_words(word):
    assert parse_bool(word) is False


@pytest.mark.parametrize("word", ["yes", "on", "", "tRuE", "2"])
def test_other_bool_words_are_refused(word):
    with pytest.raises(ValueError, match="invalid boolean"):
        parse_bool(word)


def test_typed_options_parse_and_check_bounds():
    threshold = Option("threshold", type="int", default=90, minimum=1, maximum=100)
    assert threshold.parse("85") == 85
    for bad, why in [("x", "invalid integer"), ("0", "below the minimum"), ("101", "above")]:
        with pytest.raises(ValueError, match=why):
            threshold.parse(bad)
    assert Option("t", type="duration", default=120.0).format_default() == "2m"
    assert Option("mode", choices=("a", "b")).parse("a") == "a"
    with pytest.raises(ValueError, match="not one of a, b"):
        Option("mode", choices=("a", "b")).parse("c")
    with pytest.raises(ValueError, match="invalid number"):
        Option("ratio", type="float").parse("nan")


def test_option_flag_is_kebab_case_unless_given():
    assert Option("cooldown_time").flag == "--cooldown-time"
    assert Option("service", flag="--service", aliases=("--systemd-service",)).aliases == (
        "--systemd-service",
    )


def test_declaration_rules():
    cond = Condition("KubeletUnhealthy", "KubeletUnhealthy", "KubeletIsHealthy", "ok")
    with pytest.raises(ValueError, match="checker name"):
        Checker("Bad Name", description="", check=lambda ctx: Result.ok(), condition=cond)
    with pytest.raises(ValueError, match="> 0"):
        Checker("x", description="", check=lambda ctx: Result.ok(), condition=cond, timeout=0)
    with pytest.raises(ValueError, match="duplicate option"):
        Checker(
            "x",
            description="",
            check=lambda ctx: Result.ok(),
            condition=cond,
            options=[Option("a"), Option("a")],
        )
    with pytest.raises(ValueError, match="healthy reason"):
        Condition("T", "Reason")  # permanent without a default


def test_defaults_are_independent_copies():
    checker = Checker(
        "x",
        description="",
        check=lambda ctx: Result.ok(),
        condition=Condition("", "R", permanent=False),
        options=[Option("items", multiple=True)],
    )
    first = checker.defaults()
    first.items.append("changed")
    assert checker.defaults().items == []
