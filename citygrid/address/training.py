"""Training the address parser (citygrid/address/parse.py): the shared corpora's readers, their label mapping, the
held-out split and the CRF training run. Kept apart from the parser so that the run-time tagger the API loads
carries no corpus or training code; `bench/parse_eval.py` and the tests read the corpora through here.

Run: `python -m citygrid.address.training train [--out PATH]` (writes the model and its statistics,
`address_crf.json`, next to it). The corpora are *not* shipped: they come from the shared data folder
(`shared_address_dir`), and training never runs at import.

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
every digit becomes the class symbol `0` in the features, so the corpora mix. Gold spans are projected through
`normalize_with_map` (`project`), so the model sees exactly what `parse` sees at run time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from citygrid.address.normalize import AddressInputError, normalize_with_map
from citygrid.address.parse import DEFAULT_STYLE, LABELS, MODEL_PATH, STYLES, Gazetteer, chunks, features
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


def project(text: str, spans: Sequence[tuple[str, int, int]]) -> tuple[str, list[tuple[str, int, int]]]:
    """Normalize text and carry gold spans (input coordinates) over to the normalized text."""
    norm, idx = normalize_with_map(text)
    out = []
    for lab, s, e in spans:
        a, b = bisect_left(idx, s), bisect_left(idx, e)
        if a < b:
            out.append((lab, a, b))
    return norm, out


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
    """(train, held-out) split of CCKS2021 train, fixed by seed."""
    data = read_ccks(shared_address_dir(data_dir) / "ccks2021_train.jsonl")
    k = int(round(len(data) * holdout))
    held = set(random.Random(seed).sample(range(len(data)), k))
    return [x for i, x in enumerate(data) if i not in held], [x for i, x in enumerate(data) if i in held]


def prepare(examples: Iterable[Example]) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Normalize examples and project their spans; rows the normalizer rejects are dropped."""
    out = []
    for text, spans in examples:
        try:
            out.append(project(text, spans))
        except AddressInputError:
            continue
    return out


# --------------------------------------------------------------------------- training


def training_examples(data_dir: Path | None = None, holdout: float = 0.1, seed: int = 2021) -> list[Example]:
    """CCKS2021 train minus its held-out share, plus NCAP train (normalized, spans projected)."""
    d = shared_address_dir(data_dir)
    ccks_train, _ = ccks_split(d, holdout, seed)
    return prepare(ccks_train) + prepare(read_ncap(d / "ncap_train.txt"))


def train(out: Path, data_dir: Path | None = None, c1: float = 0.4, c2: float = 0.1, max_iter: int = 150,
          holdout: float = 0.1, seed: int = 2021, minfreq: int = 2, verbose: bool = False,
          corpora: Sequence[str] = ("ccks", "ncap"), style: bool = True, scheme: str = "bio") -> dict[str, Any]:
    """Train the CRF on the shared corpora and write the model to `out`; returns training statistics.

    The statistics are also written next to the model (`address_crf.json`), so the bench knows the held-out split.

    `holdout` of CCKS2021 train (fixed by `seed`) is left out so bench/parse_eval.py can report an honest score on
    it; NCAP dev is never used for training.
    """
    import pycrfsuite

    t0 = time.perf_counter()
    d = shared_address_dir(data_dir)
    ccks_train, ccks_held = ccks_split(d, holdout, seed)
    ncap = read_ncap(d / "ncap_train.txt")
    parts = {"ccks": prepare(ccks_train) if "ccks" in corpora else [],
             "ncap": prepare(ncap) if "ncap" in corpora else []}
    gaz = Gazetteer.default()
    trainer = pycrfsuite.Trainer(algorithm="lbfgs", verbose=verbose)
    n_items = n_seq = 0
    for corpus, data in parts.items():
        for text, spans in data:
            trainer.append(features(text, gaz, corpus if style else None), bio(len(text), spans, scheme))
            n_items += len(text)
            n_seq += 1
    t1 = time.perf_counter()
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iter, "feature.minfreq": minfreq,
                        "feature.possible_transitions": True})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(out))
    last = trainer.logparser.last_iteration or {}
    stats = {
        "model": str(out), "model_bytes": out.stat().st_size, "sequences": n_seq, "characters": n_items,
        "ccks_train": len(parts["ccks"]), "ccks_heldout": len(ccks_held), "ncap_train": len(parts["ncap"]),
        "style": style, "scheme": scheme, "default_style": DEFAULT_STYLE if style else None,
        "styles": list(STYLES) if style else [],
        "holdout": holdout, "seed": seed, "c1": c1, "c2": c2, "max_iter": max_iter, "minfreq": minfreq,
        "iterations": len(trainer.logparser.iterations), "loss": last.get("loss"),
        "active_features": last.get("active_features"), "features_seconds": round(t1 - t0, 1),
        "train_seconds": round(time.perf_counter() - t1, 1), "labels": list(LABELS),
    }
    stats["model"] = out.name
    out.with_suffix(".json").write_text(json.dumps(stats, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citygrid.address.training", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train the CRF on the shared corpora and write the model")
    tr.add_argument("--out", type=Path, default=MODEL_PATH)
    tr.add_argument("--data-dir", type=Path, default=None)
    tr.add_argument("--c1", type=float, default=0.4)
    tr.add_argument("--c2", type=float, default=0.1)
    tr.add_argument("--max-iter", type=int, default=150)
    tr.add_argument("--holdout", type=float, default=0.1, help="share of CCKS2021 train kept out for evaluation")
    tr.add_argument("--minfreq", type=int, default=2)
    tr.add_argument("--verbose", action="store_true")
    tr.add_argument("--corpora", default="ccks,ncap", help="comma-separated: ccks, ncap")
    tr.add_argument("--no-style", dest="style", action="store_false", help="train without per-corpus style features")
    tr.add_argument("--scheme", choices=("bio", "bioes"), default="bio")
    args = ap.parse_args(argv)
    stats = train(args.out, args.data_dir, args.c1, args.c2, args.max_iter, args.holdout, minfreq=args.minfreq,
                  verbose=args.verbose, corpora=tuple(args.corpora.split(",")), style=args.style, scheme=args.scheme)
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
