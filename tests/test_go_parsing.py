"""Go's parsers as the drop-ins reimplement them: strconv.ParseInt/ParseBool/Quote,
time.ParseDuration (exact overflow), regexp syntax. The expected values were read off NPD's own
binaries (tests/npd_diff runs them side by side where they are installed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcheck.sdk.duration import DurationError, parse_duration, parse_duration_ns, time_quote
from healthcheck.sdk.pflag import go_parse_bool, go_parse_int
from healthcheck.sdk.pflag import go_quote as strconv_quote
from healthcheck_plugins.log_counter.logbuffer import go_syntax_error


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("010", 8),
        ("0x2", 2),
        ("0X1f", 31),
        ("0b11", 3),
        ("0o7", 7),
        ("0O17", 15),
        ("1_000", 1000),
        ("0x_1f", 31),
        ("0_7", 7),
        ("+3", 3),
        ("-0x8000000000000000", -(1 << 63)),
        ("0", 0),
        ("-0", 0),
    ],
)
def test_parse_int_base_0_as_go(text, value):
    assert go_parse_int(text) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "invalid syntax"),
        (" 3", "invalid syntax"),
        ("3 ", "invalid syntax"),
        ("٣", "invalid syntax"),
        ("²", "invalid syntax"),
        ("0x", "invalid syntax"),
        ("0b2", "invalid syntax"),
        ("08", "invalid syntax"),
        ("_1", "invalid syntax"),
        ("1_", "invalid syntax"),
        ("1__0", "invalid syntax"),
        ("1e3", "invalid syntax"),
        ("-", "invalid syntax"),
        ("9223372036854775808", "value out of range"),
        ("-0x8000000000000001", "value out of range"),
        ("99999999999999999999x", "value out of range"),  # Go stops at the overflow
    ],
)
def test_parse_int_errors_as_go(text, why):
    with pytest.raises(ValueError) as err:
        go_parse_int(text)
    assert str(err.value) == f"strconv.ParseInt: parsing {strconv_quote(text)}: {why}"


def test_klog_level_is_base_10_32_bits():
    assert go_parse_int("010", 10, 32) == 10
    for text in ("0x2", "1_0", "2147483648"):
        with pytest.raises(ValueError):
            go_parse_int(text, 10, 32)


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_every_int64_round_trips_in_every_base(n):
    sign = "-" if n < 0 else ""
    m = abs(n)
    assert go_parse_int(str(n)) == n
    assert go_parse_int(f"{sign}0x{m:x}") == n
    assert go_parse_int(f"{sign}0b{m:b}") == n
    assert go_parse_int(f"{sign}0o{m:o}") == n
    assert go_parse_int(f"{sign}0{m:o}") == n
    assert go_parse_int("_".join(str(n))) == n if n >= 0 else True


@given(st.text(max_size=12))
def test_parse_int_never_raises_anything_but_valueerror(text):
    try:
        value = go_parse_int(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert -(1 << 63) <= value < (1 << 63)
        assert text.isascii()


def test_parse_bool_words():
    assert [go_parse_bool(w) for w in ("1", "t", "T", "TRUE", "true", "True")] == [True] * 6
    assert [go_parse_bool(w) for w in ("0", "f", "F", "FALSE", "false", "False")] == [False] * 6
    with pytest.raises(ValueError, match=r'strconv\.ParseBool: parsing "yes": invalid syntax'):
        go_parse_bool("yes")


def test_quotes_as_go():
    assert strconv_quote('a"b\\c\nd\x00é\u2028') == '"a\\"b\\\\c\\nd\\x00é\\u2028"'
    assert time_quote("٣s\n") == '"\\xd9\\xa3s\\x0a"'  # time.quote escapes every non-ASCII byte


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2562047h47m16.854775807s", (1 << 63) - 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("1.5h", 5_400_000_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("0.0000000001s", 0),
        ("1µs", 1000),
        ("1μs", 1000),
        ("+0", 0),
        ("1h1m1.1s", 3_661_100_000_000),
    ],
)
def test_durations_in_nanoseconds_as_go(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "go"),
    [
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("9223372036.854775808s", 'time: invalid duration "9223372036.854775808s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("1.5.5s", 'time: missing unit in duration "1.5.5s"'),
        ("5", 'time: missing unit in duration "5"'),
        ("", 'time: invalid duration ""'),
        ("٣s", 'time: invalid duration "\\xd9\\xa3s"'),
        ("1s\n", 'time: unknown unit "s\\x0a" in duration "1s\\x0a"'),
    ],
)
def test_duration_errors_in_gos_words(text, go):
    with pytest.raises(DurationError) as err:
        parse_duration_ns(text)
    assert err.value.go_message == go
    assert "\n" not in str(err.value)


def test_durations_beyond_pythons_timers_are_refused_at_parse_time():
    """Go accepts up to 2562047h47m16.854775807s; Python's waits stop 0.85 s earlier."""
    import threading

    assert parse_duration("9223372036s") == threading.TIMEOUT_MAX
    with pytest.raises(DurationError, match="longest wait"):
        parse_duration("2562047h47m16.854775807s")


@given(st.text(max_size=20))
@settings(max_examples=300)
def test_duration_parser_only_raises_duration_error_with_one_line(text):
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        assert "\n" not in str(exc) and "\n" not in exc.go_message
        assert len(str(exc).encode()) <= 1024
    else:
        import threading

        assert abs(seconds) <= threading.TIMEOUT_MAX


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        (r"\C", "invalid escape sequence: `\\C`"),
        (r"[\C]", "invalid escape sequence: `\\C`"),
        (r"a\C(", "invalid escape sequence: `\\C`"),
        ("a(", "missing closing ): `a(`"),
        ("a)", "unexpected ): `a)`"),
        ("[a", "missing closing ]: `[a`"),
        ("a**", "invalid nested repetition operator: `**`"),
        ("x{1001}", "invalid repeat count: `{1001}`"),
        ("(?P<n", "invalid named capture: `(?P<n`"),
        ("(?P<é>x)", "invalid named capture: `(?P<é>`"),
        ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
        ("\\", "trailing backslash at end of expression: ``"),
        ("*", "missing argument to repetition operator: `*`"),
        ("(" * 999 + ")" * 999, "expression nests too deeply"),
        ("(a|" * 500 + "b" + ")" * 500, "expression nests too deeply"),
    ],
)
def test_regexps_go_rejects(expr, error):
    message = go_syntax_error(expr)
    assert message is not None and message.startswith("error parsing regexp: ")
    assert error in message


@pytest.mark.parametrize(
    "expr",
    [
        r"\Q\C\E",
        "(?<n>x)",
        "(?P<n>a)(?P<n>b)",
        "(" * 998 + ")" * 998,
        "(?:a|" * 600 + "b" + ")" * 600,
        r"\pL{1000}",
        "[]a]",
        "(?U)a+",
        "",
    ],
)
def test_regexps_go_accepts(expr):
    assert go_syntax_error(expr) is None


@pytest.mark.parametrize("text", ["٣", "²", " 3", "3 ", "1_0", "", "+", "0x2"])
def test_checker_options_take_ascii_digits_only(text):
    """``healthcheck check``'s int and float options: digits are ASCII digits (issue 11, 3)."""
    from healthcheck._declaration import Option

    for kind in ("int", "float"):
        with pytest.raises(ValueError):
            Option("n", type=kind).parse(text)
    assert Option("n", type="int").parse("-12") == -12
    assert Option("n", type="float").parse("2.5") == 2.5


REGEX_PIECES = [
    "a",
    "(",
    ")",
    "[",
    "]",
    "\\",
    "C",
    "Q",
    "E",
    "*",
    "+",
    "?",
    "{2}",
    "{1001}",
    "|",
    "(?P<",
    ">",
    "(?<",
    "é",
    "(?i)",
    "(?:",
    "\n",
    "^",
    "$",
    ":alpha:",
    "-",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(REGEX_PIECES), max_size=8).map("".join))
def test_go_syntax_check_and_compile_agree(expr):
    """Whatever the pattern: an error is one Go-worded ValueError, and a pattern the check
    accepts compiles."""
    from healthcheck_plugins.log_counter.logbuffer import PatternError, compile_pattern

    error = go_syntax_error(expr)
    if error is None:
        compile_pattern(expr)
    else:
        assert error.startswith("error parsing regexp: ")
        with pytest.raises(PatternError):
            compile_pattern(expr)


@pytest.mark.parametrize("expr", ["\\Qa(b", "x|\\Qa)", "\\Q\\E\\Qa."])
def test_a_quote_left_open_stays_inside_its_own_wrapper(expr):
    """Go quotes to the end after an unclosed \\Q; the anchoring wrappers must not be quoted."""
    from healthcheck_plugins.component import checker as component
    from healthcheck_plugins.log_counter.logbuffer import compile_pattern

    literal = expr.replace("\\Q", "").replace("\\E", "")
    tail = literal.split("|")[-1]
    assert compile_pattern(expr).search(f"text {tail}")
    per_line = component.compile_pattern(expr, per_line=True)
    assert per_line.search(f"line one\nthen {tail} here".encode())
