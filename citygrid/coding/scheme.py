"""Code schemes read from `schemas/code_rules.yaml`: encode, decode into named segments, validate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from citygrid.coding.checks import mod11_10
from citygrid.errors import E, ErrorEntry, Problem
from citygrid.settings import get_settings


@dataclass(frozen=True)
class Segment:
    name: str
    label: str
    label_en: str
    length: int
    algorithm: str | None = None


@dataclass(frozen=True)
class CodeProblem:
    """One reason a code is wrong; `error_code` is stable for machines, messages for people."""

    error_code: str
    message_zh: str
    message_en: str
    segment: str | None = None

    @classmethod
    def of(cls, entry: ErrorEntry, segment: str | None = None, **params: Any) -> CodeProblem:
        p = entry.problem(**params)
        return cls(p.error_code, p.message_zh, p.message_en, segment)

    def to_dict(self) -> dict[str, str | None]:
        return {"error_code": self.error_code, "segment": self.segment,
                "message_zh": self.message_zh, "message_en": self.message_en}

    def problem(self, field: str | None = None) -> Problem:
        """As one problem of a request, naming the request's field rather than the segment."""
        return Problem(self.error_code, self.message_zh, self.message_en, field)


@dataclass(frozen=True)
class CodeScheme:
    name: str
    standard: str
    segments: tuple[Segment, ...]
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return sum(s.length for s in self.segments)

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(name)

    def decode(self, code: str) -> dict[str, str]:
        """Split into named segments (no validation: call validate first if the input is untrusted)."""
        return {s.name: code[a:b] for s, (a, b) in ((s, self.offsets[s.name]) for s in self.segments)}

    def describe(self, code: str) -> list[dict[str, str]]:
        return [{"name": s.name, "label": s.label, "label_en": s.label_en, "value": code[a:b]}
                for s in self.segments for a, b in [self.offsets[s.name]]]

    def check_digit(self, body: str) -> str:
        return mod11_10(body)

    def has_check(self) -> bool:
        return self.segments[-1].algorithm == "iso7064_mod11_10"

    def encode(self, **parts: str | int) -> str:
        """Join segments; a trailing check segment is computed, never supplied."""
        out: list[str] = []
        for s in self.segments:
            if s.algorithm:
                continue
            v = parts[s.name]
            text = f"{v:0{s.length}d}" if isinstance(v, int) else str(v)
            if len(text) != s.length or not text.isdigit():
                raise ValueError(f"segment {s.name} must be {s.length} digits, got {text!r}")
            out.append(text)
        body = "".join(out)
        return body + self.check_digit(body) if self.has_check() else body

    def validate(
        self,
        code: str,
        known_division: Callable[[str], bool] | None = None,
        known_class: Callable[[str], bool] | None = None,
    ) -> list[CodeProblem]:
        """Every reason the code is invalid; empty when valid."""
        problems: list[CodeProblem] = []
        if len(code) != self.length:
            problems.append(CodeProblem.of(E.code_length, length=self.length, actual=len(code)))
        bad = sorted({c for c in code if not c.isascii() or not c.isdigit()})
        if bad:
            problems.append(CodeProblem.of(E.code_characters, chars="".join(bad)))
        if "division" in self.offsets and known_division is not None:
            a, b = self.offsets["division"]
            div = code[a:b]
            if len(div) == b - a and div.isdigit() and not known_division(div):
                problems.append(CodeProblem.of(E.code_division_unknown, "division", division=div))
        if "class" in self.offsets and known_class is not None:
            a, b = self.offsets["class"]
            cls = code[a:b]
            if len(cls) == b - a and cls.isdigit() and not known_class(cls):
                problems.append(CodeProblem.of(E.code_class_unknown, "class", class_code=cls))
        if self.has_check() and len(code) == self.length and not bad:
            expected = self.check_digit(code[:-1])
            if expected != code[-1]:
                problems.append(CodeProblem.of(E.code_check_digit, "check", expected=expected, actual=code[-1]))
        return problems


def _build(spec: dict[str, Any]) -> CodeScheme:
    segs = tuple(Segment(s["name"], s["label"], s.get("label_en", s["name"]), int(s["length"]), s.get("algorithm"))
                 for s in spec["segments"])
    offsets: dict[str, tuple[int, int]] = {}
    pos = 0
    for s in segs:
        offsets[s.name] = (pos, pos + s.length)
        pos += s.length
    return CodeScheme(spec["name"], spec.get("standard", ""), segs, offsets)


@lru_cache(maxsize=4)
def load_schemes(path: Path | None = None) -> dict[str, CodeScheme]:
    path = path or get_settings().schemas_dir / "code_rules.yaml"
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return {key: _build(spec) for key, spec in raw.items()}


def unified_scheme() -> CodeScheme:
    return load_schemes()["unified"]


def component_scheme() -> CodeScheme:
    return load_schemes()["component"]
