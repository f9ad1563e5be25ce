"""What a component check writes to stderr (NPD's log) is one bounded line, whatever the probe's
or the pattern's text holds."""

from __future__ import annotations

from types import SimpleNamespace

from healthcheck._declaration import CheckContext
from healthcheck_plugins.component.checker import make_check


def test_a_probes_long_multiline_reason_is_one_bounded_log_line(capsys):
    """Before: the probe's text went to stderr whole (here 1 MiB over 100,000 lines)."""
    check = make_check("kubelet", "kubelet", lambda ctx: "down\nforged line\n" * 100_000)
    options = SimpleNamespace(
        service="", health_check_timeout=10.0, log_pattern=[], enable_repair=False
    )
    result = check(CheckContext("kubelet", options, deadline=1e18))
    assert result.message == "kubelet:kubelet was found unhealthy; repair flag : false"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err.encode()) <= 513
    assert err.startswith("kubelet: down forged line")
