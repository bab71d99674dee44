"""Masking of personal data (names, ID numbers, phones) for callers without the right.

Until roles land, every API answer is masked. Masks keep enough to recognise a record you already know
(surname, birth region and last digits) and nothing that identifies a stranger.
"""

from __future__ import annotations

from typing import Any


def mask_name(v: str | None) -> str | None:
    if not v:
        return v
    return v[0] + "*" * max(1, len(v) - 1)


def mask_id_number(v: str | None) -> str | None:
    if not v:
        return v
    return v[:6] + "*" * max(0, len(v) - 10) + v[-4:] if len(v) > 10 else "*" * len(v)


def mask_phone(v: str | None) -> str | None:
    if not v:
        return v
    return v[:3] + "****" + v[-4:] if len(v) >= 11 else "*" * len(v)


PERSON_MASKS = {"name": mask_name, "id_number": mask_id_number, "phone": mask_phone}


def mask_person(p: dict[str, Any], may_see: bool = False) -> dict[str, Any]:
    if may_see:
        return dict(p)
    return {k: (PERSON_MASKS[k](v) if k in PERSON_MASKS else v) for k, v in p.items()} | {"masked": True}


def mask_attrs(attrs: dict[str, Any], personal_fields: set[str], may_see: bool = False) -> dict[str, Any]:
    """Object attributes whose catalog level is L4 are replaced by a mask of the same kind."""
    if may_see:
        return dict(attrs)
    out = {}
    for k, v in attrs.items():
        if k in personal_fields and isinstance(v, str):
            if "phone" in k:
                out[k] = mask_phone(v)
            elif "id_number" in k or k.endswith("_id"):
                out[k] = mask_id_number(v)
            else:
                out[k] = mask_name(v)
        else:
            out[k] = v
    return out
