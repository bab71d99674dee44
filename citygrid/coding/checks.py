"""Check characters: ISO 7064 MOD 11,10 for our codes, and those of the identifiers we ingest."""

from __future__ import annotations

import re

_DIGITS = frozenset("0123456789")


def mod11_10(digits: str) -> str:
    """ISO 7064 MOD 11,10 check digit (a hybrid system: catches every single-digit error)."""
    p = 10
    for ch in digits:
        s = (p + ord(ch) - 48) % 10
        if s == 0:
            s = 10
        p = (2 * s) % 11
    return str((11 - p) % 10)


def mod11_10_valid(code: str) -> bool:
    return len(code) >= 2 and set(code) <= _DIGITS and mod11_10(code[:-1]) == code[-1]


def citizen_id_check(first17: str) -> str:
    """GB 11643 citizen ID check character (ISO 7064 MOD 11-2)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def citizen_id_valid(value: str) -> bool:
    v = value.upper()
    return bool(re.fullmatch(r"\d{17}[\dX]", v)) and citizen_id_check(v[:17]) == v[17]


_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def credit_code_check(first17: str) -> str:
    """GB 32100 unified social credit code check character (MOD 31 over an alphabet without I O S V Z)."""
    total = sum(_CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_valid(value: str) -> bool:
    v = value.upper()
    if len(v) != 18 or any(c not in _CREDIT_ALPHABET for c in v):
        return False
    return credit_code_check(v[:17]) == v[17]


def org_code_check(first8: str) -> str:
    """GB 11714 organisation code check character."""
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c, 36) * w for c, w in zip(first8, weights, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)
