"""Which cloud this machine runs on, from the DMI strings the hypervisor presents."""

from __future__ import annotations

import os

DMI_ROOT = "/sys/class/dmi/id"
_FIELDS = ("sys_vendor", "product_name", "bios_vendor")


def read_dmi(root: str = DMI_ROOT) -> dict[str, str]:
    """The DMI fields that exist under ``root`` (bounded reads; unreadable ones are absent)."""
    from healthcheck.sdk.safefile import read_regular

    values = {}
    for field in _FIELDS:
        try:
            # Non-blocking and regular files only: a FIFO under --dmi-root cannot hang us.
            data = read_regular(os.path.join(root, field), 256)
        except OSError:
            continue
        values[field] = data.decode("utf-8", "replace").strip()
    return values


def detect_provider(root: str = DMI_ROOT) -> str | None:
    """``alibaba``, ``aws``, ``azure``, ``gcp`` or ``None`` when none of them matches."""
    dmi = read_dmi(root)
    vendor = dmi.get("sys_vendor", "")
    product = dmi.get("product_name", "")
    bios = dmi.get("bios_vendor", "")
    if vendor.startswith("Alibaba Cloud") or product.startswith("Alibaba Cloud"):
        return "alibaba"
    if vendor.startswith("Amazon EC2") or bios.startswith("Amazon EC2"):
        return "aws"
    if vendor == "Microsoft Corporation" and product == "Virtual Machine":
        return "azure"
    if vendor.startswith("Google") or product.startswith("Google Compute Engine"):
        return "gcp"
    return None


def resolve_provider(provider: str, root: str = DMI_ROOT) -> str:
    """``provider`` itself, or for ``auto`` the detected one; ``LookupError`` when unknown."""
    if provider != "auto":
        return provider
    found = detect_provider(root)
    if found is None:
        from healthcheck.sdk.text import one_line

        vendor = one_line(read_dmi(root).get("sys_vendor", "unreadable"), 30, marker="…")
        raise LookupError(f"no known cloud in DMI (sys_vendor '{vendor}'); use --provider")
    return found
