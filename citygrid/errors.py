"""Every error citygrid can answer with, in one catalogue: code, HTTP kind, Chinese and English text.

A raise site names an entry and fills its parameters, so the wording of an error lives here and nowhere
else, and a typo in a code is an attribute error the type checker sees:

    raise E.address_too_long(field="q", n=len(q), limit=MAX_LEN)

Texts are `str.format` templates; every `{name}` must be given. The web layer (`api/errors.py`) maps each
kind to an HTTP status; the core never imports the web framework. `/errors` and the API documentation list
the catalogue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from string import Formatter
from typing import Any, Literal

Kind = Literal["invalid", "not_found", "conflict", "unprocessable"]


@dataclass
class Problem:
    error_code: str
    message_zh: str
    message_en: str
    field: str | None = None
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CitygridError(Exception):
    """One or more problems with a request; `problems[0]` is the headline."""

    def __init__(self, problems: list[Problem] | Problem, kind: Kind = "invalid") -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        self.kind = kind
        super().__init__("; ".join(p.message_en for p in self.problems))

    @classmethod
    def one(cls, error_code: str, zh: str, en: str, field: str | None = None, row: int | None = None,
            kind: Kind = "invalid") -> CitygridError:
        """Transitional: raise sites move to catalogue entries (`E.<code>(...)`)."""
        return cls(Problem(error_code, zh, en, field, row), kind)

    def to_dict(self) -> dict[str, Any]:
        head = self.problems[0]
        return {**head.to_dict(), "errors": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class ErrorEntry:
    """One catalogue entry. Call it to get the error to raise; `.problem(...)` for one of several problems."""

    code: str
    kind: Kind
    zh: str
    en: str

    @property
    def params(self) -> set[str]:
        return {name for t in (self.zh, self.en) for _, name, _, _ in Formatter().parse(t) if name}

    def problem(self, field: str | None = None, row: int | None = None, **params: Any) -> Problem:
        return Problem(self.code, self.zh.format(**params), self.en.format(**params), field, row)

    def __call__(self, field: str | None = None, row: int | None = None, **params: Any) -> CitygridError:
        return CitygridError(self.problem(field, row, **params), self.kind)


def _e(code: str, zh: str, en: str, kind: Kind = "invalid") -> ErrorEntry:
    return ErrorEntry(code, kind, zh, en)


class E:
    """The catalogue. Attribute names are the error codes."""

    # --- requests (api/errors.py) ---------------------------------------------------------------------------
    request_invalid = _e("request_invalid", "字段 {field}：{detail_zh}", "{field}: {detail_en}", "unprocessable")
    request_malformed = _e("request_malformed", "请求体无法解析（不是合法的 JSON）", "{detail_en}")
    http_error = _e("http_error", "{detail_zh}", "{detail_en}")


def catalogue() -> dict[str, ErrorEntry]:
    """Every entry by code."""
    return {v.code: v for v in vars(E).values() if isinstance(v, ErrorEntry)}
