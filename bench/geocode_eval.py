"""Geocoding accuracy and speed on noisy variants of the demo county's standard addresses.

Builds (or reuses) a database with the demo county, its grids and address base; samples door-plate and
room addresses; makes noisy variants (dropped levels, short forms, traditional characters, full-width
digits, Chinese numerals, one-character typos, extra POI words, reordered building/unit); reports the
exact-match rate at door and room level, single and batch throughput, HTTP p95 latency, peak memory of a
100k-row batch, and the in-memory index against a pg_trgm query.

    .venv/bin/python bench/geocode_eval.py [--n 3000] [--batch-rows 100000] [--scale 1.0] [--fresh]
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import random
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citygrid.address import batch as batchmod  # noqa: E402
from citygrid.address.resolve import AddressIndex  # noqa: E402
from citygrid.db.bootstrap import prepare  # noqa: E402
from citygrid.db.cluster import Cluster  # noqa: E402
from citygrid.demo.load import load_address_base, load_demo  # noqa: E402
from citygrid.grid.generate import generate as generate_grids  # noqa: E402
from citygrid.regions.load import load_divisions  # noqa: E402
from citygrid.settings import get_settings  # noqa: E402

DB = "citygrid_bench_geocode"
TYPO = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞"


def url_for(fresh: bool, scale: float) -> tuple[str, object]:
    base = os.environ.get("DATABASE_URL")
    if base:
        url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        c = Cluster(get_settings().data_dir)
        c.start()
        admin = f"host=127.0.0.1 port={c.port} user=citygrid dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as k:
            exists = k.execute("SELECT 1 FROM pg_database WHERE datname=%s", (DB,)).fetchone()
            if fresh or not exists:
                k.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
                k.execute(f"CREATE DATABASE {DB}")
        url = f"postgresql+psycopg://citygrid@127.0.0.1:{c.port}/{DB}"
    engine = prepare(url)
    t = time.time()
    load_divisions(engine)
    load_demo(engine, seed=42, scale=scale)
    with engine.connect() as c:
        have = c.execute(text("SELECT count(*) FROM data_source WHERE name IN ('grids-420281', 'address-420281')")).scalar()
    if have < 2:
        generate_grids(engine, "420281", seed=42)
        load_address_base(engine, "420281", seed=42)
    print(f"database ready in {time.time() - t:.0f}s: {url}")
    return url, engine


@functools.lru_cache(maxsize=1)
def _s2t():  # noqa: ANN202
    import opencc

    return opencc.OpenCC("s2t")  # loading the dictionaries costs ~0.1 s: once


def variants(full: str, road: str | None, rng: random.Random, pool: str) -> dict[str, str]:
    s2t = _s2t()
    short = full.replace("湖北省黄石市", "")
    out = {
        "exact": full,
        "drop_province_city": short,
        "short_county": short.replace("大冶市", "大冶", 1),
        "drop_all_divisions": full.split("街道", 1)[-1] if "街道" in full else short,
        "traditional": s2t.convert(full),
        "fullwidth_digits": full.translate(str.maketrans("0123456789-", "０１２３４５６７８９－")),
        "chinese_numerals": _cn_numerals(full),
        "extra_poi_words": short + rng.choice(["附近", "旁边小卖部", "（快递放门卫）", "对面"]),
        "separators": " ".join([short[:6], short[6:12], short[12:]]),
    }
    if road and len(road) >= 3:
        i = rng.randrange(0, len(road) - 1)  # keep the road type (last char)
        typo = road[:i] + rng.choice([ch for ch in pool if ch != road[i]]) + road[i + 1:]
        out["typo_road"] = full.replace(road, typo, 1)
    if "单元" in full and "栋" in full:
        import re

        m = re.search(r"(\d+栋)(\d+单元)", full)
        if m:
            out["reorder_building_unit"] = full.replace(m.group(0), m.group(2) + m.group(1))
    return out


def _cn_numerals(s: str) -> str:
    import re

    import cn2an

    return re.sub(r"(\d+)(栋|单元|组)", lambda m: cn2an.an2cn(m.group(1)) + m.group(2), s)


def accuracy(idx: AddressIndex, engine, n: int) -> None:  # noqa: ANN001
    rng = random.Random(7)
    with engine.connect() as c:
        doors = c.execute(text(
            "SELECT a.code, a.full_name, r.name AS road FROM addr_node a JOIN addr_node r ON r.id = a.parent_id "
            "WHERE a.level='door' ORDER BY a.code")).all()
        rooms = c.execute(text(
            "WITH RECURSIVE up AS (SELECT id, id AS room, parent_id, level, code, name FROM addr_node "
            "WHERE level='room' AND id IN (SELECT id FROM addr_node WHERE level='room' ORDER BY md5(code) LIMIT :n) "
            "UNION ALL SELECT a.id, up.room, a.parent_id, a.level, a.code, a.name FROM addr_node a JOIN up "
            "ON a.id = up.parent_id) SELECT r.code, r.full_name, max(CASE WHEN up.level='door' THEN up.code END) door, "
            "max(CASE WHEN up.level='road' THEN up.name END) road FROM up JOIN addr_node r ON r.id = up.room "
            "GROUP BY r.code, r.full_name"), {"n": n // 2}).all()
    doors = rng.sample(doors, min(len(doors), n // 2))
    pool = "".join(sorted({ch for _, _, road in doors for ch in (road or "")[:-1]}))  # characters of road names
    stats: dict[str, list[int]] = {}
    room_stats: dict[str, list[int]] = {}
    for code, full, road in doors:
        for k, v in variants(full, road, rng, pool).items():
            top = (idx.geocode(v, limit=1)["candidates"] or [None])[0]
            ok = bool(top and top["codes"].get("door_address") == code)
            stats.setdefault(k, []).append(ok)
    for code, full, door, road in rooms:
        for k, v in variants(full, road, rng, pool).items():
            top = (idx.geocode(v, limit=1)["candidates"] or [None])[0]
            stats.setdefault(k, []).append(bool(top and door and top["codes"].get("door_address") == door))
            room_stats.setdefault(k, []).append(bool(top and top["address_code"] == code))
    print(f"\n## Accuracy ({len(doors)} door-plate and {len(rooms)} room addresses, noisy variants)\n")
    print("| variant | correct to door plate | correct to room |")
    print("|---|---|---|")
    all_d, all_r = [], []
    for k in stats:
        d, r = stats[k], room_stats.get(k, [])
        all_d += d
        all_r += r
        print(f"| {k} | {100 * sum(d) / len(d):.1f}% (n={len(d)}) | "
              f"{(f'{100 * sum(r) / len(r):.1f}% (n={len(r)})') if r else '–'} |")
    print(f"| **all** | **{100 * sum(all_d) / len(all_d):.2f}%** | **{100 * sum(all_r) / len(all_r):.2f}%** |")


def throughput(idx: AddressIndex, engine, rows: int) -> None:  # noqa: ANN001
    with engine.connect() as c:
        sample = [r[0] for r in c.execute(text("SELECT full_name FROM addr_node WHERE level IN ('door','room') "
                                               "ORDER BY md5(code) LIMIT 5000")).all()]
    t = time.perf_counter()
    for a in sample:
        idx.geocode(a, limit=1)
    single = len(sample) / (time.perf_counter() - t)
    tmp = Path(tempfile.mkdtemp(prefix="cg-geobench-"))
    src, out = tmp / "in.csv", tmp / "out.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "地址"])
        for i in range(rows):
            w.writerow([i, sample[i % len(sample)].replace("湖北省黄石市", "")])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    counts = batchmod.run(idx, src, None, out)
    dt = time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("\n## Throughput (one core)\n")
    print(f"- single geocode in process: {single:,.0f} addresses/s")
    print(f"- batch file of {rows:,} rows: {dt:.1f} s = {rows / dt:,.0f} rows/s, matched {counts['matched']:,}, "
          f"failed {counts['failed']:,}; peak RSS grew by {(rss1 - rss0) / 1024:.0f} MB (streamed)")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return sample


def http_latency(url: str, sample: list[str], n: int = 500) -> None:
    import uvicorn

    from api.main import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60) as cl:
        for _ in range(100):
            try:
                if cl.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        cl.get("/address/geocode", params={"q": sample[0]})  # loads the index
        lat = []
        for a in sample[:n]:
            t = time.perf_counter()
            r = cl.get("/address/geocode", params={"q": a, "limit": 1})
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
    server.should_exit = True
    th.join(timeout=10)
    lat.sort()
    print(f"- single geocode over HTTP ({n} sequential requests): p50 {lat[len(lat) // 2]:.1f} ms, "
          f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms (target < 20 ms)")


def trigram_vs_memory(idx: AddressIndex, engine, sample: list[str]) -> None:  # noqa: ANN001
    qs = [a.replace("湖北省黄石市大冶市", "") for a in sample[:300]]
    with engine.connect() as c:
        c.execute(text("SET pg_trgm.similarity_threshold = 0.3"))
        t = time.perf_counter()
        hits = 0
        for q in qs:
            r = c.execute(text("SELECT code FROM addr_node WHERE level IN ('road','compound','village_group','door') "
                               "AND full_name % :q ORDER BY similarity(full_name, :q) DESC LIMIT 5"), {"q": q}).first()
            hits += r is not None
        pg = (time.perf_counter() - t) / len(qs) * 1000
    t = time.perf_counter()
    for q in qs:
        idx.geocode(q, limit=1)
    mem = (time.perf_counter() - t) / len(qs) * 1000
    print(f"- candidate lookup: pg_trgm similarity query {pg:.1f} ms/address (candidates for {hits}/{len(qs)}) vs "
          f"in-memory index full geocode {mem:.2f} ms/address")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--batch-rows", type=int, default=100_000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--fresh", action="store_true")
    a = ap.parse_args()
    url, engine = url_for(a.fresh, a.scale)
    with engine.connect() as c:
        t = time.perf_counter()
        idx = AddressIndex.load(c)
        print(f"index: {len(idx):,} nodes loaded in {time.perf_counter() - t:.1f} s")
    print(f"load average: {os.getloadavg()}")
    accuracy(idx, engine, a.n)
    sample = throughput(idx, engine, a.batch_rows)
    http_latency(url, sample)
    trigram_vs_memory(idx, engine, sample)


if __name__ == "__main__":
    main()
