"""What pymesos hands the callbacks (addict ``Dict`` objects, with ``use_addict=True``) turned into
the plain JSON values the engine works on."""

from __future__ import annotations

from typing import Any


def value_of(obj: Any) -> str | None:
    """The ``value`` of a Mesos id object (``{"value": ...}``), or the string itself; else ``None``."""
    if isinstance(obj, dict):
        value = obj.get("value")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


def offer_ids(offers: Any) -> list[str]:
    """The ids of whatever offers can be read from ``offers``, skipping malformed ones."""
    ids: list[str] = []
    for offer in offers or []:
        try:
            value = value_of(offer.get("id"))
        except Exception:
            value = None
        if value:
            ids.append(value)
    return ids


def plain(obj: Any) -> Any:
    """addict Dicts to plain dicts/lists (the engine works on plain JSON)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj
