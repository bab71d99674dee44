"""Domain errors that carry machine-readable codes and bilingual messages naming the field and row.

The web layer maps `kind` to an HTTP status; the core never imports the web framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
        return cls(Problem(error_code, zh, en, field, row), kind)

    def to_dict(self) -> dict[str, Any]:
        head = self.problems[0]
        return {**head.to_dict(), "errors": [p.to_dict() for p in self.problems]}
