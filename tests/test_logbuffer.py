"""log_counter.logbuffer: NPD's log_buffer_test.go cases; the fast path against the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcheck.sdk.patterns import PatternError, compile_re2, go_syntax_error, single_line
from healthcheck_plugins.log_counter.logbuffer import (
    LogCounter,
    Matcher,
    compile_pattern,
    reference_match,
    trim_space,
)


def matches_after(expr: str, lines, size: int = 1000) -> bool:
    regex = compile_pattern(expr)
    return reference_match(regex, lines, size)


def counter_count(pattern: str, lines, revert: str = "") -> int:
    counter = LogCounter(pattern, revert)
    for line in lines:
        counter.push(line)
    return counter.count


# TestMatch of pkg/systemlogmonitor/log_buffer_test.go: (buffer size, lines, pattern, matched)
MATCH_CASES = [
    (10, ["1", "2", "3", "4", "5"], "", True),
    (10, ["a1", "a2", "a3"], r"a\d", True),
    (10, ["a1", "a2", "b3"], r"a\d", False),
    (10, ["a1", "b2"], r"\w{2}", True),
    (10, ["a1", "b2"], "a1\nb2", True),
    (10, ["a1", "b2"], "a1b2", False),
    (2, ["a1", "b2", "c3"], "(?s)a1.+", False),
    (3, ["a1", "b2", "c3"], "(?s)a1.+", True),
    (10, ["xa", "a"], "a", True),
    (10, ["foo Started kubelet"], "Started kubelet", True),
    (10, ["Started kubelet.service"], "Started kubelet", False),
]


@pytest.mark.parametrize(("size", "lines", "expr", "expected"), MATCH_CASES)
def test_match_includes_the_last_line(size, lines, expr, expected):
    assert matches_after(expr, lines, size) is expected
    counter = LogCounter(expr, lines=size)
    for line in lines[:-1]:
        counter.push(line)
    before = counter.count
    counter.push(lines[-1])
    assert (counter.count - before == 1) is expected


def test_ring_keeps_the_last_n_lines():
    counter = LogCounter("(?s).*", lines=3)
    assert counter.buffer is not None
    for line in "abcde":
        counter.push(line)
    assert list(counter.buffer) == ["c", "d", "e"]


def test_invalid_patterns_are_rejected_with_gos_reason():
    with pytest.raises(PatternError, match="missing closing ]"):
        compile_pattern("[")
    with pytest.raises(PatternError, match="trailing"):
        compile_pattern("a\\")  # would otherwise combine with the wrapper into "(?:a\\)\\z"
    with pytest.raises(PatternError):
        compile_pattern("a)|(b")
    with pytest.raises(PatternError):
        LogCounter("ok", revert_pattern="(")


def test_alternation_is_anchored_as_a_whole_unlike_npd():
    # NPD compiles "a|b\z": "a" then matches anywhere and the old line counts again on every push.
    assert counter_count("a|b", ["a", "x", "x"]) == 1
    assert counter_count("a|b", ["a", "b", "x"]) == 2


def test_revert_pattern_decrements_and_a_line_matching_both_nets_zero():
    lines = ["Started kubelet", "Stopping kubelet", "Started kubelet", "kubelet"]
    assert counter_count("Started kubelet", lines, revert="Stopping kubelet") == 1
    assert counter_count("kubelet", ["kubelet"], revert="kubelet") == 0
    assert counter_count("x", ["stop", "stop"], revert="stop") == -2


def test_empty_pattern_counts_every_line():
    assert counter_count("", ["a", "", "b"]) == 3


def test_multiline_pattern_spans_buffered_lines():
    lines = [
        "panic: boom",
        "goroutine 1 [running]:",
        "other",
        "panic: boom",
        "goroutine 2 [running]:",
    ]
    assert counter_count(r"panic: boom\ngoroutine \d+ \[running\]:", lines) == 2


def test_fast_path_is_taken_for_the_shipped_patterns():
    shipped = [
        "Started (Kubernetes kubelet|kubelet.service|kubelet.service - .*).",
        "Starting (Docker Application Container Engine|docker.service|docker.service - "
        "Docker Application Container Engine)...",
        r"unregister_netdevice: waiting for \w+ to become free. Usage count = \d+",
        "returned error: readlink /var/lib/docker/overlay2.*: invalid argument.*",
    ]
    assert all(single_line(p) for p in shipped)
    assert LogCounter(shipped[0], shipped[1]).buffer is None
    for expr in ["a\nb", r"a\nb", "(?s)a.", r"\s", "[^a]", "^a", r"\pL", "[[:space:]]", r"\x0a"]:
        assert not single_line(expr), expr


def test_trim_space_is_go_strings_trimspace():
    assert trim_space(" \t kubelet \u3000\n") == "kubelet"
    # Go's unicode.IsSpace does not include the information separators Python's strip removes.
    assert trim_space("\x1ckubelet\x1f") == "\x1ckubelet\x1f"
    assert trim_space(" \x1ckubelet\x1f\u2003") == "\x1ckubelet\x1f"
    assert trim_space("kubelet") == "kubelet"


FRAGMENTS = [
    "a",
    "b",
    "ab",
    " ",
    ".",
    ".*",
    ".+",
    "a*",
    "b?",
    r"\w",
    r"\W",
    r"\d",
    r"\s",
    r"\S",
    r"\b",
    r"\B",
    "^",
    "$",
    "(?m)",
    "(?s)",
    "(?i)",
    "(?-s)",
    "[ab]",
    "[^a]",
    "[a-z]",
    "[ -~]",
    "[[:alpha:]]",
    "[[:space:]]",
    r"\n",
    "\n",
    "(a|b)",
    "|",
    "(",
    ")",
    r"\z",
    r"\A",
    "A",
    r"\x0a",
    r"\pL",
    r"\t",
    "é",
    "[^é]",
]


@st.composite
def patterns(draw):
    expr = "".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=5)))
    try:
        compile_pattern(expr)
    except PatternError:
        return "a"
    return expr


lines_strategy = st.lists(st.text(alphabet="abéA \n\t", max_size=6), max_size=12)


@settings(max_examples=600, deadline=None)
@given(patterns(), lines_strategy)
def test_fast_path_agrees_with_the_reference_buffer(expr, lines):
    regex = compile_pattern(expr)
    fast = Matcher(expr)
    expected = sum(reference_match(regex, lines[: i + 1]) for i in range(len(lines)))
    assert counter_count(expr, lines) == expected, (expr, lines, fast.fast)


@settings(max_examples=200, deadline=None)
@given(patterns(), patterns(), lines_strategy)
def test_counter_with_revert_agrees_with_the_reference(expr, revert, lines):
    up, down = compile_pattern(expr), compile_pattern(revert)
    expected = 0
    for i in range(len(lines)):
        expected += reference_match(up, lines[: i + 1])
        if revert:
            expected -= reference_match(down, lines[: i + 1])
    assert counter_count(expr, lines, revert) == expected


# Untrimmed journal messages: ASCII and Unicode white space (Go trims both) at either end,
# newlines inside, non-ASCII text.
multiline_messages = st.lists(st.text(alphabet="abé \n\t\u00a0\u3000\x1c", max_size=6), max_size=30)


@settings(max_examples=400, deadline=None)
@given(patterns(), st.one_of(st.just(""), patterns()), multiline_messages, st.integers(1, 5))
def test_batched_counting_equals_one_by_one(expr, revert, messages, chunk):
    one_by_one = LogCounter(expr, revert)
    for message in messages:
        one_by_one.push(trim_space(message))
    batched = LogCounter(expr, revert)
    batched.push_messages([m.encode() for m in messages], chunk=chunk)
    assert batched.count == one_by_one.count


def test_batched_counting_trims_and_keeps_the_last_line_of_each_message():
    counter = LogCounter("kubelet started")
    assert counter.pattern.batch is not None
    counter.push_messages(
        [
            b"kubelet started \t",  # trailing ASCII white space is trimmed
            "kubelet started\u00a0".encode(),  # so is Go's Unicode white space
            b"kubelet started\nsomething else",  # the match must end the message
            b"something else\n  kubelet started",  # the last line of a multi-line message
            b"kubelet started\x1c",  # not white space for Go
        ]
    )
    assert counter.count == 3


def test_batching_is_used_for_the_shipped_patterns_only_when_safe():
    assert Matcher("Started (Kubernetes kubelet|kubelet.service - .*).").batch is not None
    assert Matcher("").batch is not None
    assert Matcher("kubelet$").batch is None
    assert Matcher(r"kubelet\z").batch is None
    assert Matcher(r"a\nb").batch is None


@pytest.mark.parametrize(
    "expr, matches, misses",
    [
        ("\\Q", ["", "x"], []),  # Go: an empty literal, matches anything
        ("a\\Q.*)", ["a.*)"], ["ab)"]),  # quoted to the end: '.' '*' ')' are literal
        ("a\\Qb\\Ec\\Q+", ["abc+"], ["abcc"]),  # a closed quote, then an open one
        ("\\\\Q", ["\\Q"], ["Q"]),  # an escaped backslash, then a plain Q: no quote at all
    ],
)
def test_an_open_quote_is_closed_inside_the_wrapper(expr, matches, misses):
    """Before: Go accepts \\Q without \\E (quote to the end), but the wrapper's ')' became part
    of the quote, so a valid pattern failed to compile (found by the Go-syntax fuzz)."""
    assert go_syntax_error(expr) is None
    regex = compile_pattern(expr)
    assert all(regex.search(text) for text in matches)
    assert not any(regex.search(text) for text in misses)
    assert compile_re2(expr, prefix="\\A", anchor="\\z").fullmatch(matches[0]) is not None


def test_a_per_line_pattern_with_an_open_quote_compiles():
    from healthcheck_plugins.component.logmatch import compile_pattern as component_pattern

    regex = component_pattern("oom\\Q(kill", per_line=True)
    assert regex.search(b"first\nkernel: oom(kill happened\n") is not None
    assert regex.search(b"kernel: oomkill\n") is None
