"""Address parser speed on one core: where the time of `AddressParser.parse_many` goes, and its rate against the
plain baseline CRF of issue 12 in interleaved rounds (same process, same load), since on a shared machine only the
ratio is stable; the load average and a calibration loop are printed beside every figure.

Stages per address (best of `--rounds` each, CPU time): check + fold, `features`, crfsuite tagging (of which the
Viterbi pass alone, tagged with empty items), and spans + values (chunks, trimming, rooms rule, `span_value`).

Run: .venv/bin/python bench/parse_speed.py [--model PATH] [--baseline PATH] [--rounds N] [--split test|dev|ncap]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citygrid.address.normalize import check_input, fold  # noqa: E402
from citygrid.address.parse import AddressParser, chunks, features  # noqa: E402
from citygrid.address.training import BASELINE_PATH, BaselineTagger, honest_split  # noqa: E402


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _calib_ms() -> float:
    c = time.process_time()
    sum(range(10**6))
    return (time.process_time() - c) * 1000


def _best_us(fn: Callable[[], object], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        c = time.process_time()
        fn()
        best = min(best, time.process_time() - c)
    return best / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--baseline", type=Path, default=BASELINE_PATH, help="trained by parse_eval.py when missing")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--split", choices=("test", "dev", "ncap"), default="test",
                    help="whose raw texts to time (no labels are read)")
    args = ap.parse_args(argv)
    sp = honest_split()
    rows = {"test": sp.ccks_test, "dev": sp.ccks_dev, "ncap": sp.ncap_dev}[args.split]
    texts = [t for t, _ in rows]
    n = len(texts)
    parser = AddressParser.load(args.model)
    gaz, tagger = parser.gazetteer, parser._tagger()
    parser.parse_many(texts)  # warm the caches (fold table, char classes, cn2an's patterns)
    print(f"{n} raw addresses of CCKS {args.split} ({sum(map(len, texts)) / n:.1f} chars on average), model "
          f"{parser.path.name}, {len(tagger.labels())} tags; load {_load()}, calibration sum(range(10**6)) "
          f"{_calib_ms():.1f} ms CPU")
    import pycrfsuite

    folded = [fold(check_input(t)) for t in texts]
    xs = [features(t, gaz, parser.style, f) for t, f in zip(texts, folded, strict=True)]
    empty = [pycrfsuite.ItemSequence([[] for _ in f]) for f in folded]
    tags = [tagger.tag(x) for x in xs]
    stages: dict[str, Callable[[], object]] = {
        "check + fold": lambda: [fold(check_input(t)) for t in texts],
        "features": lambda: [features(t, gaz, parser.style, f) for t, f in zip(texts, folded, strict=True)],
        "tagging (crfsuite)": lambda: [tagger.tag(x) for x in xs],
        "  of which Viterbi alone": lambda: [tagger.tag(x) for x in empty],
        "spans + values": lambda: [parser._spans(t, f, chunks(g), gaz) for t, f, g in zip(texts, folded, tags, strict=True)],
        "parse_many (all)": lambda: parser.parse_many(texts),
    }
    print(f"\nper address, best of {args.rounds}, CPU µs:")
    for name, fn in stages.items():
        print(f"  {name:<26} {_best_us(fn, n, args.rounds):7.1f}")
    print(f"  (load {_load()})")

    if not args.baseline.exists():
        print(f"\nno baseline model at {args.baseline}: run bench/parse_eval.py once to train it")
        return 0
    base = BaselineTagger(args.baseline)
    runs: dict[str, Callable[[], object]] = {"citygrid parse_many": lambda: parser.parse_many(texts),
                                             "baseline CRF parse_many": lambda: base.parse_many(texts)}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            c = time.process_time()
            fn()
            rates[name].append(n / (time.process_time() - c))
    print(f"\ninterleaved rounds ({args.rounds} each), addresses per CPU-second on one core (target 5,000):")
    for name, v in rates.items():
        v.sort()
        print(f"  {name:<24} best {v[-1]:7,.0f}  median {v[len(v) // 2]:7,.0f}  worst {v[0]:7,.0f}")
    ours, theirs = (sorted(v)[len(v) // 2] for v in rates.values())
    print(f"  median ratio citygrid / baseline: {ours / theirs:.2f}; load {_load()}, calibration {_calib_ms():.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
