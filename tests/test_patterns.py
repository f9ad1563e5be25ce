"""healthcheck.sdk.patterns: RE2 compiled once, in the SDK, with Go's error wording."""

from __future__ import annotations

import subprocess
import sys

import pytest

from healthcheck.sdk.patterns import PatternError, compile_re2, go_syntax_error, single_line


def test_no_wrapper_compiles_the_expression_itself():
    regex = compile_re2("b|c")
    assert regex.search("abc").start() == 1
    assert regex.search("xc") is not None


def test_an_anchor_applies_to_the_expression_as_a_whole():
    regex = compile_re2("a|b", anchor="\\z")
    assert regex.search("xa") is not None
    assert regex.search("ax") is None, "the anchor must bind the whole alternation, not 'b'"


def test_prefix_and_anchor_wrap_one_group():
    regex = compile_re2("a|b", prefix="\\A", anchor="\\z")
    assert regex.search("a") is not None
    assert regex.search("ab") is None


def test_ignore_case_and_bytes():
    regex = compile_re2("überlastung", ignore_case=True, as_bytes=True)
    assert regex.search("ÜBERLASTUNG erkannt".encode()) is not None
    assert compile_re2("überlastung", as_bytes=True).search("ÜBERLASTUNG".encode()) is None
    # bytes offsets, not character offsets
    assert regex.search("€ überlastung".encode()).start() == len("€ ".encode())


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a(b", "error parsing regexp: missing closing ): `a(b`"),
        ("a\\", "error parsing regexp: trailing backslash at end of expression: ``"),
        ("x**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("\\C", "error parsing regexp: invalid escape sequence: `\\C`"),  # a rule only Go has
    ],
)
def test_errors_carry_gos_words(expr, message):
    assert go_syntax_error(expr) == message
    with pytest.raises(PatternError) as caught:
        compile_re2(expr, anchor="\\z")
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_the_expression_is_checked_before_the_wrapper_can_repair_it():
    # "a\\" alone is an error; with a "z" after it, it would be the valid "a\\z".
    with pytest.raises(PatternError, match="trailing backslash"):
        compile_re2("a\\", anchor="z")


def test_single_line():
    assert single_line("pleg is not healthy")
    assert not single_line("a\\nb")
    assert not single_line("^start")
    assert not single_line("(?s:a.b)")


def test_google_re2_is_imported_only_when_compiling():
    code = (
        "import sys\n"
        "import healthcheck.sdk.patterns as p\n"
        "assert 're2' not in sys.modules\n"
        "p.compile_re2('x')\n"
        "assert 're2' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_log_buffer_and_component_use_the_same_error_type_and_words():
    from healthcheck_plugins.component import logmatch
    from healthcheck_plugins.log_counter import logbuffer

    assert logbuffer.PatternError is PatternError
    with pytest.raises(PatternError, match=r"^error parsing regexp: missing closing \)"):
        logbuffer.compile_pattern("a(b")
    with pytest.raises(ValueError) as caught:
        logmatch.compile_pattern("a(b")
    assert str(caught.value) == (
        'invalid regular expression "a(b": error parsing regexp: missing closing ): `a(b`'
    )
