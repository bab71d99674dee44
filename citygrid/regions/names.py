"""Short forms and kinds of division names, so 大冶 finds 大冶市 and 建设社区 finds 建设社区居民委员会."""

from __future__ import annotations

import re

_AUTONOMOUS = re.compile(r"^(.{2,}?)(?:[\u4e00-\u9fff]{1,6}?族)+自治(?:州|县|旗)$")
_SUFFIXES = [
    ("特别行政区", 2), ("自治区", 2), ("街道办事处", 2), ("街道", 2), ("地区", 2), ("林区", 2), ("新区", 2),
    ("省", 2), ("市", 2), ("盟", 2), ("县", 2), ("区", 2), ("旗", 2), ("镇", 2), ("乡", 2), ("苏木", 2),
]


def _strip(name: str) -> str:
    m = _AUTONOMOUS.match(name)
    if m:
        return m.group(1)[:2] if len(m.group(1)) > 2 and "族" in m.group(1) else m.group(1)
    if name.endswith("自治区"):
        # 广西壮族自治区 -> 广西, 内蒙古自治区 -> 内蒙古
        body = name[: -len("自治区")]
        idx = body.find("族")
        return body[:2] if idx > 0 else body
    for suffix, min_rest in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= min_rest:
            return name[: -len(suffix)]
    return name


def village_forms(name: str) -> tuple[str, list[str], str]:
    """(short_name, aliases, kind) for a village-level unit of the statistical list."""
    for suffix, short_suffix, kind in (
        ("村民委员会", "村", "村委会"),
        ("居民委员会", "", "居委会"),
        ("村委会", "村", "其他"),
        ("居委会", "", "其他"),
    ):
        if name.endswith(suffix):
            body = name[: -len(suffix)]
            short = body + short_suffix if short_suffix and not body.endswith(short_suffix) else body
            aliases = [short]
            if short.endswith("社区") and len(short) > 3:
                aliases.append(short[:-2])
            elif short.endswith("村") and len(short) > 2:
                aliases.append(short[:-1])
            elif not short.endswith("社区"):
                aliases.append(short + "社区")
            return short, _uniq([a for a in aliases if a != name]), kind
    return name, [], "其他"


def division_forms(name: str, level: int) -> tuple[str, list[str]]:
    """(short_name, aliases) for province to township levels."""
    if level == 5:
        short, aliases, _ = village_forms(name)
        return short, aliases
    short = _strip(name)
    aliases = [short] if short != name else []
    if name.endswith("街道办事处"):
        aliases.append(name[: -len("办事处")])
    return short, _uniq(aliases)


def township_kind(name: str, code9: str) -> str:
    """Kind by name, falling back on the GB/T 10114 segment ranges (001-099 街道 ...)."""
    for suffix in ("街道", "镇", "乡", "苏木"):
        if name.endswith(suffix):
            return suffix
    seg = int(code9[6:9]) if len(code9) == 9 and code9.isdigit() else 0
    if seg < 100:
        return "街道"
    if seg < 200:
        return "镇"
    if seg < 400:
        return "乡"
    return "其他乡级单位"


def _uniq(items: list[str]) -> list[str]:
    seen: list[str] = []
    for it in items:
        if it and it not in seen:
            seen.append(it)
    return seen
