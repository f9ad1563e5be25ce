"""The one options pipeline (Checker.parse_value/parse_options, OptionError) and the four front
doors that translate only their syntax and their wording around it."""

from __future__ import annotations

import pytest

from healthcheck import Checker, Condition, Option, OptionError, Result
from healthcheck._agent.config import ConfigError, parse_config
from healthcheck._host import discover
from healthcheck._runner import run_check

CONDITION = Condition("", "R", permanent=False)


def _checker(check=lambda ctx: Result.ok(), validate=None) -> Checker:
    def odd_only(options) -> None:
        if options.threshold % 2 == 0:
            raise ValueError("threshold must be odd")

    return Checker(
        "demo",
        description="",
        check=check,
        condition=CONDITION,
        options=[
            Option("threshold", type="int", default=3, minimum=1, maximum=9),
            Option("mode", choices=("a", "b"), default="a"),
            Option("tags", multiple=True),
            Option("quick", type="bool", default=False),
            Option("wait", type="duration", default=1.0),
        ],
        validate=validate or odd_only,
    )


def test_raw_values_from_any_front_door_become_typed_options():
    checker = _checker()
    options = checker.parse_options(
        {"threshold": "5", "mode": "b", "tags": ["x", 7], "quick": True, "wait": "2m"}
    )
    assert (options.threshold, options.mode, options.tags) == (5, "b", ["x", "7"])
    assert (options.quick, options.wait) == (True, 120.0)
    assert checker.parse_options({"threshold": 7}).threshold == 7  # a YAML integer
    assert checker.parse_options({"tags": "one"}).tags == ["one"]  # one value, still a list
    assert checker.parse_options().threshold == 3  # the declared default


@pytest.mark.parametrize(
    "raw, key, reason",
    [
        ({"threshold": "x"}, "threshold", 'invalid integer "x"'),
        ({"threshold": "10"}, "threshold", '"10" is above the maximum 9'),
        ({"mode": "c"}, "mode", '"c" is not one of a, b'),
        ({"threshold": [1]}, "threshold", "expected a scalar, got a list"),
        ({"quick": 1}, "quick", "expected a string, got a number"),
        ({"wait": 5}, "wait", 'expected a duration string such as "30s", got 5'),
        ({"thresold": "3"}, "thresold", "unknown option of demo (known: threshold, mode, tags"),
        ({"threshold": "4"}, None, "threshold must be odd"),
    ],
)
def test_every_refusal_is_one_option_error_naming_the_key(raw, key, reason):
    with pytest.raises(OptionError) as caught:
        _checker().parse_options(raw)
    assert caught.value.key == key
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)  # callers that caught ValueError still do


def test_given_values_skip_parsing_but_not_validation():
    checker = _checker()
    assert checker.parse_options(given={"threshold": 7}).threshold == 7
    with pytest.raises(OptionError, match="must be odd"):
        checker.parse_options(given={"threshold": 8})
    assert checker.parse_options(given={"threshold": 8}, validate=False).threshold == 8


def test_a_misspelt_option_fails_at_once_naming_the_options():
    options = _checker().parse_options()
    with pytest.raises(AttributeError, match=r"checker demo has no option 'thresold' \(options: "):
        options.thresold  # noqa: B018
    with pytest.raises(AttributeError):
        options.thresold = 5
    assert options.as_dict()["threshold"] == 3


def test_a_check_reading_a_misspelt_option_is_unknown_naming_it():
    checker = _checker(check=lambda ctx: Result.ok(str(ctx.options.thresold)))
    result = run_check(checker, checker.defaults()).result
    assert result.status == 2
    assert "AttributeError: checker demo has no option 'thresold'" in result.message


def test_options_copy_and_compare_by_their_slots():
    import copy

    checker = _checker()
    first = checker.parse_options({"tags": ["a"]})
    second = copy.copy(first)
    second.mode = "b"
    assert (first.mode, second.mode, second.tags) == ("a", "b", ["a"])
    assert "threshold=3" in repr(first)


# ------------------------------------------------------------------------------ the front doors


def test_check_front_door_words_an_option_error_as_argparse_did(run_cli):
    proc = run_cli("check", "conntrack", "--threshold", "x", "--bogus")
    assert proc.returncode == 2
    # The first bad value in argv order, before argparse's own complaint about --bogus.
    assert proc.stdout == 'healthcheck check conntrack: argument --threshold: invalid integer "x"\n'
    combination = run_cli("check", "maintenance-events", "--endpoint", "https://x")
    assert combination.stdout == (
        'healthcheck check maintenance-events: --endpoint "https://x": use an http:// URL\n'
    )


def test_health_checker_front_door_words_an_option_error_as_pflag_does(run_cli):
    proc = run_cli("--component=kubelet", "--cooldown-time=x", script="health-checker")
    assert (proc.returncode, proc.stdout) == (
        2,
        'invalid argument "x" for "--cooldown-time" flag: time: invalid duration "x"\n',
    )


def test_log_counter_front_door_words_an_option_error_as_npd_does(run_cli):
    proc = run_cli("--count=x", script="log-counter")
    assert proc.returncode == 2
    assert proc.stdout.startswith('invalid argument "x" for "--count" flag: strconv.ParseInt:')
    # validate() through the pipeline, the log path error placed where NPD places it
    proc = run_cli("--log-path=/nonexistent", script="log-counter")
    assert proc.stdout.startswith('error watching journald: failed to stat the log path "/none')


def test_agent_front_door_words_an_option_error_as_a_key_path():
    catalog = {c.name: c.checker for c in discover()}

    def error(options) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_config({"checks": [{"checker": "conntrack", "options": options}]}, catalog)
        return str(caught.value)

    assert error({"threshold": "x"}) == 'checks[0].options.threshold: invalid integer "x"'
    assert error({3: 1}).startswith("checks[0].options.3: unknown option of conntrack (known: ")
    assert error({"threshold": True}) == (
        "checks[0].options.threshold: expected a scalar for option threshold, got a boolean"
    )


def test_agent_log_patterns_are_the_list_the_drop_in_reads():
    """Before: the agent kept one list per --log-pattern value ([[("a", 1)], [("b", 2)]]), which
    the component checker's pattern map could not read; now every front door flattens."""
    catalog = {c.name: c.checker for c in discover()}
    raw = {"checks": [{"checker": "kubelet", "options": {"log_pattern": ["1:a", "2:b,3:c"]}}]}
    options = parse_config(raw, catalog).checks[0].options
    assert options.log_pattern == [("a", 1), ("b", 2), ("c", 3)]
