"""How the notations the resolver reads occur in the real labelled corpora (CCKS2021 train, NCAP train + dev), so
that bench/geocode_eval.py's noise kinds come from how people write, and the resolver reads each notation the way
the annotators did.

Counts, per shape, the addresses that contain it and the labels its parts carry: lettered building designators
(A座, A栋, B6栋, 8D幢, B6-37号), floor + room written `5楼2` / `12楼1581`, and lanes (`100弄5号`). CCKS2021
masks every digit as 0, NCAP keeps them (5,219 of NCAP train's addresses are CCKS2021 addresses with their digits),
so room-number shapes are read from NCAP.

    .venv/bin/python bench/notation_corpus.py [--examples 3]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citygrid.address.training import read_ccks, read_ncap, shared_address_dir  # noqa: E402

Spans = list[tuple[str, str, int, int]]  # label, text, start, end


def corpora() -> Iterator[tuple[str, str, Spans]]:
    d = shared_address_dir()
    for name, rows in (("ccks", read_ccks(d / "ccks2021_train.jsonl")),
                       ("ncap", read_ncap(d / "ncap_train.txt") + read_ncap(d / "ncap_dev.txt"))):
        for text, spans in rows:
            yield name, text, [(lab, text[s:e], s, e) for lab, s, e in spans]


def shape(s: str) -> str:
    """A span's shape: digits → 9, ASCII letters → A, Chinese numerals before a unit word → 九."""
    s = re.sub(r"[0-9]+", "9", s)
    s = re.sub(r"[A-Za-z]+", "A", s)
    return re.sub("[零〇一二两三四五六七八九十百]+(?=[栋幢座楼层单号室])", "九", s)


def after(spans: Spans, i: int) -> tuple[str, str] | None:
    """The span right after span i (touching it, or after a dash), as (label, shape)."""
    for lab, t, s, _ in spans[i + 1:i + 2]:
        if s - spans[i][3] <= 1:
            return lab, shape(t)
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=3)
    a = ap.parse_args()
    rows = list(corpora())
    n = Counter(c for c, _, _ in rows)
    print(f"addresses: {dict(n)}\n")

    # 1. building designators with letters: the houseno spans (the annotators' building level) that hold a letter
    letter = Counter()
    letter_next = Counter()
    ex: dict[str, list[str]] = {}
    houseno_total = Counter()
    for c, text, spans in rows:
        for i, (lab, t, _, _) in enumerate(spans):
            if lab != "houseno":
                continue
            houseno_total[c] += 1
            if re.search("[A-Za-z]", t):
                k = shape(t)
                letter[(c, k)] += 1
                nx = after(spans, i)
                letter_next[(k, nx[0] if nx else "-")] += 1
                ex.setdefault(k, []).append(text)
    print("## building (houseno) spans with a letter, by shape (A = letters, 9 = digits)\n")
    print(f"houseno spans: {dict(houseno_total)}")
    for (c, k), v in sorted(letter.items(), key=lambda x: -x[1])[:16]:
        print(f"- {c} {k}: {v}   e.g. {' | '.join(ex[k][:a.examples])}")
    print("\nwhat follows a lettered building span (shape, next label):")
    for (k, nx), v in sorted(letter_next.items(), key=lambda x: -x[1])[:14]:
        print(f"- {k} then {nx}: {v}")
    # letters anywhere in houseno/cellno/roomno/floorno: the finer levels
    other = Counter()
    for _c, _text, spans in rows:
        for lab, t, _, _ in spans:
            if lab in ("cellno", "floorno", "roomno") and re.search("[A-Za-z]", t):
                other[(lab, shape(t))] += 1
    print("\nletters in finer levels (label, shape):", ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in other.most_common(10)))

    # 2. 9楼9: a number with 楼 directly followed by a bare number
    print("\n## `9楼9` (a number, 楼, a bare number): what the annotators call the parts\n")
    pairs = Counter()
    lens = Counter()
    pex: dict[tuple[str, str], list[str]] = {}
    for c, text, spans in rows:
        for i, (lab, t, _, e) in enumerate(spans[:-1]):
            m = re.fullmatch(r"([0-9零〇一二两三四五六七八九十]+)楼", t)
            lab2, t2, s2, _ = spans[i + 1]
            if m and s2 == e and re.fullmatch(r"[0-9]+[室号]?", t2):
                pairs[(c, f"{lab} + {lab2}")] += 1
                pex.setdefault((lab, lab2), []).append(text)
                if c == "ncap" and lab == "floorno" and m.group(1).isdigit():
                    digits = re.match(r"[0-9]+", t2)
                    room = digits.group(0) if digits else ""
                    kind = ("room starts with the floor" if room.startswith(m.group(1)) and len(room) > len(m.group(1))
                            else f"room of {len(room)} digits, not the floor's")
                    lens[kind] += 1
    for (c, p), v in pairs.most_common():
        print(f"- {c} {p}: {v}   e.g. {' | '.join(pex[tuple(p.split(' + '))][:a.examples])}")  # type: ignore[index]
    print("NCAP floorno + roomno, the room number:", dict(lens))
    # unlabelled 9楼9 in the raw text (CCKS leaves rooms unlabelled)
    raw = Counter(c for c, text, _ in rows if re.search(r"[0-9]+楼[0-9]+(?![0-9]*[单栋幢号层])", text))
    print("texts with `9楼9` not followed by 单/栋/幢/号/层:", dict(raw))
    three = Counter()
    for c, _text, spans in rows:
        labs = [lab for lab, t, _, _ in spans if re.fullmatch(r"[0-9]+楼", t)]
        three.update((c, lab) for lab in labs)
    print("spans `9楼` by label:", dict(three))

    # 3. lanes: 9弄
    print("\n## lanes `9弄` and what follows\n")
    lane = Counter()
    lane_next = Counter()
    lex: dict[str, list[str]] = {}
    for c, text, spans in rows:
        for i, (lab, t, _, _) in enumerate(spans):
            if re.fullmatch(r"[0-9零〇一二两三四五六七八九十百]+弄", t):
                lane[(c, lab)] += 1
                nx = after(spans, i)
                key = f"{lab} then {nx[0] + ' ' + nx[1] if nx else '-'}"
                lane_next[key] += 1
                lex.setdefault(key, []).append(text)
            elif lab == "road" and re.search("[0-9一二三四五六七八九十]+弄$", t):
                lane[(c, "road ending in 9弄 (one span)")] += 1
    for (c, lab), v in lane.most_common():
        print(f"- {c} `9弄` labelled {lab}: {v}")
    print("what follows the lane span:")
    for k, v in lane_next.most_common(10):
        print(f"- {k}: {v}   e.g. {' | '.join(lex[k][:a.examples])}")
    print("texts with 9弄:", dict(Counter(c for c, text, _ in rows if re.search(r"[0-9零〇一二两三四五六七八九十]+弄", text))))
    print("texts with 弄 after a road word and a number, then 9号:",
          dict(Counter(c for c, text, _ in rows if re.search(r"[路街道巷][0-9]+弄[0-9]+号", text))))


if __name__ == "__main__":
    main()
