"""Provider detection from DMI strings (a directory of files, as /sys/class/dmi/id)."""

from __future__ import annotations

import pytest

from healthcheck_plugins.maintenance_events.metadata.detect import detect_provider, resolve_provider


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"sys_vendor": "Alibaba Cloud\n", "product_name": "Alibaba Cloud ECS\n"}, "alibaba"),
        ({"sys_vendor": "Amazon EC2\n", "product_name": "m5.large\n"}, "aws"),
        ({"sys_vendor": "Xen\n", "bios_vendor": "Amazon EC2\n"}, "aws"),
        ({"sys_vendor": "Microsoft Corporation\n", "product_name": "Virtual Machine\n"}, "azure"),
        ({"sys_vendor": "Microsoft Corporation\n", "product_name": "Surface Book\n"}, None),
        ({"sys_vendor": "Google\n", "product_name": "Google Compute Engine\n"}, "gcp"),
        ({"sys_vendor": "QEMU\n"}, None),
        ({}, None),
    ],
)
def test_detect(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert detect_provider(str(tmp_path)) == expected


def test_missing_root_is_none_and_resolve_names_the_fix(tmp_path):
    assert detect_provider(str(tmp_path / "absent")) is None
    with pytest.raises(LookupError, match="use --provider"):
        resolve_provider("auto", str(tmp_path / "absent"))
    assert resolve_provider("gcp", str(tmp_path / "absent")) == "gcp"
