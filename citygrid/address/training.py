"""Training the address parser (citygrid/address/parse.py): the shared corpora's readers, their label mapping, the
honest split and the CRF training run. Kept apart from the parser so that the run-time tagger the API loads
carries no corpus or training code; `bench/parse_eval.py` and the tests read the corpora through here.

Run: `python -m citygrid.address.training train [--out PATH]` rebuilds the shipped model and its statistics
(`address_crf.json`, next to it) from the frozen split's training rows; the recipe, the data and the time it took
are in that JSON. L-BFGS is deterministic, so the same data gives the same model. The corpora are *not* shipped:
they come from the shared data folder (`shared_address_dir`), and training never runs at import. The shipped model
is the defaults: the 6,523 CCKS2021 rows of the split's train + dev groups (never test), BIOES, features
`parse.FEATURES`, c1 0.4, c2 0.1, 150 iterations, feature.minfreq 2; about 150 s of CPU (9 min wall-clock on a
shared, loaded 2-core machine). `make parser-model` runs exactly this; CI does not train (the model is committed,
and its JSON records the data's sha256, the split seed and the command). `--no-dev` leaves dev out for tuning
runs; `--corpora ccks,ncap --style` adds NCAP; `--recipe baseline` trains issue 12's plain character CRF into
bench/out/ (never shipped); `--drop GROUP` leaves a feature group out (`FEATURE_GROUPS`, for ablations).

The split (`honest_split`, frozen in bench/splits/address_split.json, written once by `... training split`):
CCKS2021 train is full of near-duplicates (same road, same POI) and 5,219 of NCAP train's 8,957 addresses are
CCKS2021 addresses too, so the old random 10 % holdout (`ccks_split`) leaked. `near_duplicate_groups` links
addresses with the same digit-masked text, the same first road + first POI, or a character-trigram Jaccard
similarity >= 0.5 of what remains without the administrative spans, digits and letters, over CCKS2021 train, NCAP
train and NCAP dev together; each CCKS group is drawn whole into test (15 %), dev (10 %) or train by a seeded hash,
and training drops every row grouped with an evaluation row.

Label mapping onto the parser's unified labels (`LABELS` in citygrid/address/parse.py):

| unified         | CCKS2021 (BIOES)                 | NCAP (BIO)                           |
|-----------------|----------------------------------|--------------------------------------|
| province        | prov                             | prov                                 |
| city            | city                             | city                                 |
| county          | district                         | district                             |
| town            | town (乡镇/街道)                 | town                                 |
| community       | community (村/社区)              | community                            |
| devzone         | devzone                          | devZone                              |
| village_group   | village_group (组)               | road spans "N组" (see below)         |
| road            | road                             | road, subRoad, subroad               |
| roadno          | roadno                           | roadno, subroadno, subRoadno         |
| poi             | poi                              | poi                                  |
| subpoi          | subpoi                           | subpoi                               |
| houseno         | houseno (楼栋)                    | houseno                              |
| cellno          | cellno (单元)                     | cellno                               |
| floorno         | floorno                          | floorno                              |
| roomno          | roomno (label set; unused)       | roomno                               |
| assist          | assist                           | assist                               |
| distance        | distance                         | assist spans "N米" (see below)       |
| intersection    | intersection                     | assist spans "交叉口" (see below)    |
| redundant       | others, detail, redundant        | redundant, person, country, otherinfo|

NCAP spans are refined by content (`harmonize_ncap`, applied to train and dev alike): a road span that is exactly
a number + 组 (3组) is a village_group, an assist span that is exactly 交叉口/路口/交汇处/交界处 an intersection, and
an assist span that is exactly a number + 米/公里 a distance, as CCKS2021 labels them.

Mixing the two corpora plainly cost about 4 F1 points on CCKS2021 held-out and 1 on NCAP dev, so each example's
corpus is given to the features as its style (`features(..., style=corpus)`; the parser picks a style at run time).

CCKS masks every digit to 0 and NCAP keeps real digits (several per token): both are read per character and
every digit becomes the class symbol `0` in the features, so the corpora mix. The model reads the corpus text
as it is (folded per character, as `parse` reads the caller's text), so gold spans need no projection.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from citygrid.address.normalize import AddressInputError, check_input, normalize_with_map
from citygrid.address.parse import FEATURES, LABELS, MODEL_PATH, Gazetteer, Span, chunks, features
from citygrid.settings import REPO_ROOT, get_settings

# --------------------------------------------------------------------------- corpora location


def shared_address_dir(data_dir: Path | None = None) -> Path:
    """The shared labelled address data: data_dir, the settings' `shared_data` (CITYGRID_SHARED_DATA), or
    ../shared/data/address next to the repository."""
    cands: list[Path] = []
    if data_dir is not None:
        cands.append(Path(data_dir))
    env = get_settings().shared_data
    if env:
        cands += [env / "address", env / "data" / "address", env]
    cands.append(REPO_ROOT.parent / "shared" / "data" / "address")
    for c in cands:
        if (c / "ncap_dev.txt").exists():
            return c
    raise FileNotFoundError(
        "shared address data not found (looked in " + ", ".join(str(c) for c in cands) + "); set "
        "CITYGRID_SHARED_DATA to the shared data folder or place the shared folder next to the repository"
    )


# --------------------------------------------------------------------------- labels

CCKS_LABELS = {
    "prov": "province", "city": "city", "district": "county", "devzone": "devzone", "town": "town",
    "community": "community", "village_group": "village_group", "road": "road", "roadno": "roadno", "poi": "poi",
    "subpoi": "subpoi", "houseno": "houseno", "cellno": "cellno", "floorno": "floorno", "roomno": "roomno",
    "assist": "assist", "distance": "distance", "intersection": "intersection", "others": "redundant",
    "detail": "redundant", "redundant": "redundant",
}
NCAP_LABELS = {
    "country": "redundant", "prov": "province", "city": "city", "district": "county", "devZone": "devzone",
    "devzone": "devzone", "town": "town", "community": "community", "road": "road", "subRoad": "road",
    "subroad": "road", "roadno": "roadno", "subroadno": "roadno", "subRoadno": "roadno", "poi": "poi",
    "subpoi": "subpoi", "houseno": "houseno", "cellno": "cellno", "floorno": "floorno", "roomno": "roomno",
    "person": "redundant", "assist": "assist", "redundant": "redundant", "otherinfo": "redundant",
}


def bio(n: int, spans: Iterable[tuple[str, int, int]], scheme: str = "bio") -> list[str]:
    """Tags for spans: BIO, or BIOES (single-character spans S-, last character E-) when scheme="bioes"."""
    tags = ["O"] * n
    for lab, s, e in spans:
        tags[s] = "B-" + lab
        for j in range(s + 1, e):
            tags[j] = "I-" + lab
        if scheme == "bioes":
            if e - s == 1:
                tags[s] = "S-" + lab
            else:
                tags[e - 1] = "E-" + lab
    return tags


# --------------------------------------------------------------------------- corpora

Example = tuple[str, list[tuple[str, int, int]]]


def read_ccks(path: Path) -> list[Example]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                spans = [(CCKS_LABELS[lab], s, e) for lab, s, e in chunks(d["tags"]) if lab in CCKS_LABELS]
                out.append((d["text"], spans))
    return out


_NCAP_GROUP = re.compile("[0-9零〇一二两三四五六七八九十百]+组")
_NCAP_INTERSECTION = re.compile("交叉口|路口|交汇处|交界处")
_NCAP_DISTANCE = re.compile("[0-9]+(?:米|公里)")


def harmonize_ncap(text: str, spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """NCAP has no village_group, intersection or distance labels: its 3组 spans are labelled road and its
    交叉口 / 100米 spans assist. Whole spans of exactly those forms get the unified label CCKS2021 uses."""
    out = []
    for lab, s, e in spans:
        w = text[s:e]
        if lab == "road" and _NCAP_GROUP.fullmatch(w):
            lab = "village_group"
        elif lab == "assist" and _NCAP_INTERSECTION.fullmatch(w):
            lab = "intersection"
        elif lab == "assist" and _NCAP_DISTANCE.fullmatch(w):
            lab = "distance"
        out.append((lab, s, e))
    return out


def read_ncap(path: Path) -> list[Example]:
    out: list[Example] = []
    chars: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if chars:
            text = "".join(chars)
            spans = [(NCAP_LABELS[lab], s, e) for lab, s, e in chunks(tags) if lab in NCAP_LABELS]
            out.append((text, harmonize_ncap(text, spans)))
        chars.clear()
        tags.clear()

    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                flush()
                continue
            tok, tag = parts
            for j, ch in enumerate(tok):
                chars.append(ch)
                tags.append(tag if j == 0 or tag == "O" else "I-" + tag[2:])
    flush()
    return out


def ccks_split(data_dir: Path | None = None, holdout: float = 0.1, seed: int = 2021) -> tuple[list[Example], list[Example]]:
    """(train, held-out) random split of CCKS2021 train, fixed by seed: the old split, kept to reproduce old figures.

    It leaks: CCKS2021 is full of near-duplicates (same road, same POI), and 5,219 of NCAP train's 8,957 addresses
    are CCKS2021 addresses too, so a model trained with NCAP train has seen most of this held-out share. Use
    `honest_split` for anything new.
    """
    data = read_ccks(shared_address_dir(data_dir) / "ccks2021_train.jsonl")
    k = int(round(len(data) * holdout))
    held = set(random.Random(seed).sample(range(len(data)), k))
    return [x for i, x in enumerate(data) if i not in held], [x for i, x in enumerate(data) if i in held]


# --------------------------------------------------------------------------- the honest split

SPLIT_PATH = REPO_ROOT / "bench" / "splits" / "address_split.json"
SPLIT_SEED = 12
SPLIT_TEST = 0.15
SPLIT_DEV = 0.10
SIMILARITY = 0.5
_ADMIN_LABELS = frozenset({"province", "city", "county", "town", "redundant"})
_DIGIT = re.compile("[0-9]")
_ALNUM_RUN = re.compile("[0-9A-Za-z]")


def _masked(text: str) -> str:
    try:
        return _DIGIT.sub("0", normalize_with_map(text)[0])
    except AddressInputError:
        return "\x01" + text


def _detail(text: str, spans: Sequence[tuple[str, int, int]]) -> str:
    """The address without its administrative parts, digits and letters: what makes two addresses the same place."""
    keep = [True] * len(text)
    for lab, s, e in spans:
        if lab in _ADMIN_LABELS:
            keep[s:e] = [False] * (e - s)
    rest = "".join(c for c, k in zip(text, keep, strict=True) if k)
    return _ALNUM_RUN.sub("", _masked(rest)) if rest.strip() else ""


def _grams(text: str) -> frozenset[str]:
    return frozenset(text[i: i + 3] for i in range(len(text) - 2)) or frozenset([text])


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def near_duplicate_groups(rows: Sequence[Example], threshold: float = SIMILARITY,
                          keys: bool = True, similarity: bool = True) -> list[int]:
    """Group id of each row: connected components of "near-duplicate of" between addresses.

    Two addresses are linked when (keys) their normalized, digit-masked texts are equal or their first gold road
    and first gold POI are equal (same road + same POI), or (similarity) the character-trigram Jaccard similarity of
    what is left after removing the gold administrative spans, digits and letters is >= threshold (东新路0000号中大
    银泰0层 ~ 东新路0000号中大银泰城00栋). Trigrams shared by more than 400 rows (路0 号, 小区) only find no pairs.
    """
    n = len(rows)
    uf = _Union(n)
    if keys:
        first: dict[tuple[str, str, str], int] = {}
        for i, (text, spans) in enumerate(rows):
            road = [text[s:e] for lab, s, e in spans if lab == "road"]
            poi = [text[s:e] for lab, s, e in spans if lab == "poi"]
            ks = [("text", _masked(text), "")]
            if road or poi:
                ks.append(("road+poi", _masked(road[0]) if road else "", _masked(poi[0]) if poi else ""))
            for k in ks:
                uf.union(i, first.setdefault(k, i))
    if similarity:
        grams = [_grams(d) if (d := _detail(t, s)) else frozenset() for t, s in rows]
        df: dict[str, int] = {}
        for gs in grams:
            for g in gs:
                df[g] = df.get(g, 0) + 1
        inv: dict[str, list[int]] = {}
        for i, gs in enumerate(grams):
            for g in gs:
                if df[g] <= 400:
                    inv.setdefault(g, []).append(i)
        for i, gs in enumerate(grams):
            cands: set[int] = set()
            for g in gs:
                if df[g] <= 400:
                    cands.update(j for j in inv[g] if j > i)
            for j in cands:
                if len(gs & grams[j]) >= threshold * len(gs | grams[j]):
                    uf.union(i, j)
    return [uf.find(i) for i in range(n)]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_split(data_dir: Path | None = None, seed: int = SPLIT_SEED, test: float = SPLIT_TEST, dev: float = SPLIT_DEV,
               threshold: float = SIMILARITY) -> dict[str, Any]:
    """The honest split: CCKS2021 train, NCAP train and NCAP dev grouped together into near-duplicate groups
    (`near_duplicate_groups`), each CCKS group drawn whole into test / dev / train by a hash of the group's first
    member and the seed. Rows sharing a group with any evaluation row (CCKS test or dev, NCAP dev) are excluded
    from training: that drops most of NCAP train's copies of CCKS addresses, and the CCKS/NCAP rows that duplicate
    NCAP dev addresses."""
    import hashlib

    d = shared_address_dir(data_dir)
    ccks = read_ccks(d / "ccks2021_train.jsonl")
    ntrain = read_ncap(d / "ncap_train.txt")
    ndev = read_ncap(d / "ncap_dev.txt")
    rows = ccks + ntrain + ndev
    corpus = ["ccks"] * len(ccks) + ["ncap_train"] * len(ntrain) + ["ncap_dev"] * len(ndev)
    local = list(range(len(ccks))) + list(range(len(ntrain))) + list(range(len(ndev)))
    group = near_duplicate_groups(rows, threshold)

    def draw(g: int) -> str:
        u = int(hashlib.sha256(f"{seed}:{_masked(rows[g][0])}".encode()).hexdigest()[:12], 16) / 16**12
        return "test" if u < test else "dev" if u < test + dev else "train"

    part = {g: draw(g) for g in set(group)}
    evaluated: set[int] = set()
    for i, g in enumerate(group):
        if (corpus[i] == "ccks" and part[g] != "train") or corpus[i] == "ncap_dev":
            evaluated.add(g)
    out: dict[str, Any] = {"ccks_test": [], "ccks_dev": [], "ccks_excluded": [], "ncap_train_excluded": []}
    for i, g in enumerate(group):
        if corpus[i] == "ccks":
            key = {"test": "ccks_test", "dev": "ccks_dev"}.get(part[g])
            if key is None and g in evaluated:
                key = "ccks_excluded"
            if key:
                out[key].append(local[i])
        elif corpus[i] == "ncap_train" and g in evaluated:
            out["ncap_train_excluded"].append(local[i])
    sizes: dict[int, int] = {}
    for i in range(len(ccks)):
        sizes[group[i]] = sizes.get(group[i], 0) + 1
    by_size = sorted(sizes.values(), reverse=True)
    return {
        "rule": "near_duplicate_groups over CCKS2021 train + NCAP train + NCAP dev (exact text, road+POI key, "
                f"trigram Jaccard of the non-administrative part >= {threshold}); a group goes to test when "
                f"sha256('{{seed}}:' + normalized masked text of its first row) / 16**12 < {test}, to dev when < "
                f"{test + dev}; training drops rows grouped with any evaluation row",
        "seed": seed, "test": test, "dev": dev, "threshold": threshold,
        "files": {name: _sha256(d / name) for name in ("ccks2021_train.jsonl", "ncap_train.txt", "ncap_dev.txt")},
        "stats": {"ccks_rows": len(ccks), "ccks_groups": len(sizes), "ccks_singletons": by_size.count(1),
                  "ccks_largest_groups": by_size[:10], "ccks_rows_in_groups_of_5_or_more": sum(v for v in by_size if v >= 5),
                  "all_groups": len(set(group)),
                  **{k: len(v) for k, v in out.items()}},
        **out,
    }


class HonestSplit(NamedTuple):
    ccks_train: list[Example]
    ccks_dev: list[Example]
    ccks_test: list[Example]
    ncap_train: list[Example]
    ncap_dev: list[Example]
    meta: dict[str, Any]


def honest_split(data_dir: Path | None = None, path: Path = SPLIT_PATH) -> HonestSplit:
    """The frozen split (bench/splits/address_split.json, written once by `training split`; its file hashes are
    checked so a changed corpus cannot silently change what test means). CCKS test is for the final figures only:
    tuning looks at CCKS dev and NCAP dev."""
    d = shared_address_dir(data_dir)
    meta = json.loads(Path(path).read_text("utf-8"))
    for name, digest in meta["files"].items():
        if _sha256(d / name) != digest:
            raise ValueError(f"{d / name} is not the file the frozen split {path} was made from")
    ccks = read_ccks(d / "ccks2021_train.jsonl")
    test, dev = set(meta["ccks_test"]), set(meta["ccks_dev"])
    out_c = test | dev | set(meta["ccks_excluded"])
    out_n = set(meta["ncap_train_excluded"])
    ntrain = read_ncap(d / "ncap_train.txt")
    return HonestSplit(
        [x for i, x in enumerate(ccks) if i not in out_c], [x for i, x in enumerate(ccks) if i in dev],
        [x for i, x in enumerate(ccks) if i in test], [x for i, x in enumerate(ntrain) if i not in out_n],
        read_ncap(d / "ncap_dev.txt"), {k: v for k, v in meta.items() if not k.startswith(("ccks_", "ncap_"))})


def prepare(examples: Iterable[Example]) -> list[Example]:
    """The examples the parser accepts (rows `check_input` rejects, e.g. blank ones, are dropped). Text and spans
    stay the corpus's own: the tagger reads the caller's text, folded per character, not the normalized text."""
    out = []
    for text, spans in examples:
        try:
            check_input(text)
        except AddressInputError:
            continue
        out.append((text, list(spans)))
    return out


# --------------------------------------------------------------------------- the plain baseline (issue 12)

# The plain character CRF, kept as the yardstick bench/parse_eval.py prints beside the shipped model:
# per character of the raw text (no folding, no gazetteer, no suffix words, no digit classes), the character, its
# neighbours at ±1 and ±2, the four bigrams and three trigrams of the ±2 window; BIOES, c1 0.1, c2 0.01, 100
# iterations, every feature kept (minfreq 0). It is trained on the same honest-split rows as the shipped model,
# never shipped, and written to bench/out/ (git-ignored) by `training train --recipe baseline`.
BASELINE_FEATURES = "plain-chars/raw-input"
RECIPES: dict[str, dict[str, Any]] = {
    "shipped": {"c1": 0.4, "c2": 0.1, "max_iter": 150, "minfreq": 2, "features": FEATURES},
    "baseline": {"c1": 0.1, "c2": 0.01, "max_iter": 100, "minfreq": 0, "features": BASELINE_FEATURES},
}
BASELINE_PATH = REPO_ROOT / "bench" / "out" / "baseline_crf.bin"
# Feature groups of `parse.features` an ablation run can leave out (`train(drop=...)`), by attribute prefix. A model
# trained without a group still loads in AddressParser: the tagger ignores attributes it has no weights for.
# (One more group was measured this way and then removed from `features`, see parse.py's docstring: the
# digit-run context, "nx=", "nx2=", "px=", "dl=".)
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "types": ("t=",),  # char types (digit/latin/han/punct) of the ±1 window
    "suffix": ("ss=", "se="),  # longest suffix word starting / ending here
    "gazetteer": ("gz=", "gs="),  # division names, full and short forms
    "window2": ("l2=", "r2="),  # the bigrams at ±2
}


def baseline_features(text: str) -> list[list[str]]:
    """The plain baseline's attributes for each character of the raw text (see `RECIPES`)."""
    p = ["^", "^", *text, "$", "$"]
    return [
        ["c=" + c, "l=" + lt, "r=" + rt, "ll=" + ll, "rr=" + rr, "lb=" + ll + lt, "lc=" + lt + c, "cr=" + c + rt,
         "rb=" + rt + rr, "llc=" + ll + lt + c, "lcr=" + lt + c + rt, "crr=" + c + rt + rr]
        for ll, lt, c, rt, rr in zip(p, p[1:], p[2:], p[3:], p[4:], strict=False)
    ]


class BaselineTagger:
    """Tags raw text with a model trained by `train(recipe="baseline")`: spans are text[start:end], value = text."""

    def __init__(self, path: Path = BASELINE_PATH) -> None:
        import pycrfsuite

        self.path = Path(path)
        self.meta: dict[str, Any] = json.loads(self.path.with_suffix(".json").read_text("utf-8"))
        if self.meta.get("features") != BASELINE_FEATURES:
            raise ValueError(f"{self.path} is not a baseline model (features {self.meta.get('features')!r})")
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(self.path))

    def parse(self, text: str) -> list[Span]:
        return [Span(lab, text[s:e], s, e, text[s:e]) for lab, s, e in chunks(self._tagger.tag(baseline_features(text)))]

    def parse_many(self, texts: Iterable[str]) -> list[list[Span]]:
        return [self.parse(t) for t in texts]


# --------------------------------------------------------------------------- training


def training_examples(data_dir: Path | None = None, corpora: Sequence[str] = ("ccks",),
                      include_dev: bool = True, limit: int | None = None) -> dict[str, list[Example]]:
    """Training rows of the honest split by corpus: CCKS train (+ CCKS dev when `include_dev`, for the shipped
    model once tuning is over), NCAP train minus its rows grouped with evaluation rows. Never CCKS test."""
    sp = honest_split(data_dir)
    parts: dict[str, list[Example]] = {}
    if "ccks" in corpora:
        parts["ccks"] = prepare(sp.ccks_train + (sp.ccks_dev if include_dev else []))
    if "ncap" in corpora:
        parts["ncap"] = prepare(sp.ncap_train)
    return {k: v[:limit] for k, v in parts.items()}


def train(out: Path, data_dir: Path | None = None, c1: float | None = None, c2: float | None = None,
          max_iter: int | None = None, minfreq: int | None = None, verbose: bool = False,
          corpora: Sequence[str] = ("ccks",), style: bool = False, scheme: str = "bioes", include_dev: bool = True,
          recipe: str = "shipped", command: str | None = None, drop: Sequence[str] = (),
          limit: int | None = None) -> dict[str, Any]:
    """Train the CRF on the honest split's training rows and write the model to `out`; returns its statistics,
    also written next to the model (`address_crf.json`, which the parser reads: features, styles).

    L-BFGS in crfsuite is deterministic: the same data and parameters give the same model. CCKS test is never
    read here; CCKS dev is included only for the shipped model (`include_dev`), after tuning.
    """
    import pycrfsuite

    r = RECIPES[recipe]
    c1 = r["c1"] if c1 is None else c1
    c2 = r["c2"] if c2 is None else c2
    max_iter = r["max_iter"] if max_iter is None else max_iter
    minfreq = r["minfreq"] if minfreq is None else minfreq
    if recipe == "baseline" and (style or list(corpora) != ["ccks"]):
        raise ValueError("the baseline recipe is CCKS2021 alone, without styles")
    dropped = tuple(pre for g in drop for pre in FEATURE_GROUPS[g])
    if dropped and recipe != "shipped":
        raise ValueError("drop applies to the shipped recipe's feature groups")
    t0 = time.perf_counter()
    t0_cpu = time.process_time()
    parts = training_examples(data_dir, corpora, include_dev, limit)
    gaz = Gazetteer.default() if recipe == "shipped" else None
    trainer = pycrfsuite.Trainer(algorithm="lbfgs", verbose=verbose)
    n_items = n_seq = 0
    for corpus, data in parts.items():
        for text, spans in data:
            xs = features(text, gaz, corpus if style else None) if gaz is not None else baseline_features(text)
            if dropped:
                xs = [[a for a in row if not a.startswith(dropped)] for row in xs]
            trainer.append(xs, bio(len(text), spans, scheme))
            n_items += len(text)
            n_seq += 1
    t1 = time.perf_counter()
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iter, "feature.minfreq": minfreq,
                        "feature.possible_transitions": True})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(out))
    last = trainer.logparser.last_iteration or {}
    split = json.loads(SPLIT_PATH.read_text("utf-8"))
    stats = {
        "model": out.name, "model_bytes": out.stat().st_size, "recipe": recipe, "features": r["features"],
        "input": "caller's text, folded per character" if recipe == "shipped" else "caller's text as it is",
        "sequences": n_seq, "characters": n_items,
        "ccks_train": len(parts.get("ccks", [])), "ncap_train": len(parts.get("ncap", [])), "include_dev": include_dev,
        "split": {"file": str(SPLIT_PATH.relative_to(REPO_ROOT)), "seed": split["seed"], "files": split["files"]},
        "style": style, "scheme": scheme, "default_style": ("ncap" if "ncap" in parts else "ccks") if style else None,
        "styles": sorted(parts) if style else [],
        "c1": c1, "c2": c2, "max_iter": max_iter, "minfreq": minfreq,
        "iterations": len(trainer.logparser.iterations), "loss": last.get("loss"),
        "active_features": last.get("active_features"), "features_seconds": round(t1 - t0, 1),
        "train_seconds": round(time.perf_counter() - t1, 1), "cpu_seconds": round(time.process_time() - t0_cpu, 1),
        "labels": list(LABELS), "command": command, "dropped_groups": list(drop),
        "tags": sorted({lab for data in parts.values() for _, spans in data for lab, _, _ in spans}),
    }
    out.with_suffix(".json").write_text(json.dumps(stats, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citygrid.address.training", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train the CRF on the honest split's training rows and write the model")
    tr.add_argument("--recipe", choices=sorted(RECIPES), default="shipped",
                    help="shipped: the run-time parser's model; baseline: the plain character CRF of issue 12")
    tr.add_argument("--out", type=Path, default=None, help=f"default {MODEL_PATH.name} (shipped) or bench/out/ (baseline)")
    tr.add_argument("--data-dir", type=Path, default=None)
    tr.add_argument("--c1", type=float, default=None, help="default: the recipe's")
    tr.add_argument("--c2", type=float, default=None)
    tr.add_argument("--max-iter", type=int, default=None)
    tr.add_argument("--minfreq", type=int, default=None)
    tr.add_argument("--verbose", action="store_true")
    tr.add_argument("--drop", default="", help="ablation: comma-separated feature groups to leave out: "
                    + ", ".join(FEATURE_GROUPS))
    tr.add_argument("--corpora", default="ccks", help="comma-separated: ccks, ncap")
    tr.add_argument("--style", action="store_true", help="per-corpus style attribute (with more than one corpus)")
    tr.add_argument("--scheme", choices=("bio", "bioes"), default="bioes")
    tr.add_argument("--no-dev", dest="include_dev", action="store_false",
                    help="leave CCKS dev out (for tuning runs; the shipped model includes it)")
    sp = sub.add_parser("split", help="write the frozen honest split (bench/splits/address_split.json); done once")
    sp.add_argument("--out", type=Path, default=SPLIT_PATH)
    sp.add_argument("--data-dir", type=Path, default=None)
    sp.add_argument("--threshold", type=float, default=SIMILARITY)
    sp.add_argument("--force", action="store_true", help="overwrite an existing split (changes what test means)")
    args = ap.parse_args(argv)
    if args.cmd == "split":
        if args.out.exists() and not args.force:
            ap.error(f"{args.out} exists: the test split is frozen (--force to replace it)")
        split = make_split(args.data_dir, threshold=args.threshold)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(split, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
        print(json.dumps(split["stats"], indent=1))
        return 0
    out = args.out or (MODEL_PATH if args.recipe == "shipped" else BASELINE_PATH)
    command = "python -m citygrid.address.training " + " ".join(argv if argv is not None else sys.argv[1:])
    stats = train(out, args.data_dir, args.c1, args.c2, args.max_iter, args.minfreq, args.verbose,
                  tuple(args.corpora.split(",")), args.style, args.scheme, args.include_dev, args.recipe, command,
                  tuple(g for g in args.drop.split(",") if g))
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
