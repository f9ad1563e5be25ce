"""healthcheck.sdk.proc.boot_id: the one reader of the boot id (repair policy, conntrack)."""

from __future__ import annotations

import os

import pytest

from healthcheck.sdk import proc, repair


def _boot_id_file(root):
    path = root / "sys/kernel/random/boot_id"
    path.parent.mkdir(parents=True)
    return path


def test_boot_id_is_the_stripped_file(tmp_path):
    _boot_id_file(tmp_path).write_text("2f1c0c38-5b8e-4a53-9e8f-2d4c6a1b0e77\n")
    assert proc.boot_id(str(tmp_path)) == "2f1c0c38-5b8e-4a53-9e8f-2d4c6a1b0e77"


def test_boot_id_reads_at_most_64_bytes(tmp_path):
    _boot_id_file(tmp_path).write_text("a" * 100_000)
    assert proc.boot_id(str(tmp_path)) == "a" * 64


def test_a_missing_boot_id_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        proc.boot_id(str(tmp_path))


def test_a_fifo_at_the_boot_id_is_refused_at_once(tmp_path):
    os.mkfifo(_boot_id_file(tmp_path))  # nobody writes it: a read would wait forever
    with pytest.raises(OSError, match="FIFO") as caught:
        proc.boot_id(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_this_machine_has_a_boot_id_and_the_repair_policy_uses_it():
    with open("/proc/sys/kernel/random/boot_id") as fh:
        expected = fh.read().strip()
    assert proc.boot_id() == expected
    assert repair._boot_id() == expected
