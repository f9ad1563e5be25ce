"""config/ holds what `healthcheck npd-config` generates; this fails when they drift apart."""

from __future__ import annotations

import json
from pathlib import Path

from healthcheck._npdconfig import validate_document

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_shipped_npd_configs_equal_the_generated_ones(tmp_path, run_cli):
    proc = run_cli(
        "npd-config", "--output-dir", str(tmp_path), "--command", "/usr/local/bin/healthcheck"
    )
    assert proc.returncode == 0, proc.stderr
    generated = sorted(Path(p).name for p in proc.stdout.split())
    assert generated, "npd-config wrote nothing"
    for name in generated:
        shipped = CONFIG / name
        assert shipped.exists(), f"config/{name} is missing: run healthcheck npd-config"
        assert shipped.read_text() == (tmp_path / name).read_text(), (
            f"config/{name} drifted from its declaration: regenerate it with "
            "healthcheck npd-config --output-dir config --command /usr/local/bin/healthcheck"
        )
        assert validate_document(json.loads(shipped.read_text())) == []
