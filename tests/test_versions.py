"""The versioned LRU behind tile and page caches: served only at the version it was built at, bounded in bytes."""

from __future__ import annotations

from citygrid.db.versions import VersionedCache


def test_entry_is_served_only_at_its_version() -> None:
    c: VersionedCache[str] = VersionedCache(max_items=10, max_bytes=1000)
    c.put("k", 3, "page", 10)
    assert c.get("k", 3) == "page"
    assert c.get("k", 4) is None and c.get("k", 2) is None
    c.put("k", 4, "newer", 10)
    assert c.get("k", 4) == "newer" and c.get("k", 3) is None
    assert (c.hits, c.misses) == (2, 3)


def test_bounded_by_count_and_bytes_least_recent_goes_first() -> None:
    c: VersionedCache[int] = VersionedCache(max_items=3, max_bytes=100)
    for i in range(3):
        c.put(i, 1, i, 30)
    assert c.get(0, 1) == 0  # 0 is now the most recent
    c.put(3, 1, 3, 30)  # 120 bytes > 100: the least recent (1) goes
    assert c.get(1, 1) is None and c.get(0, 1) == 0 and len(c) == 3 and c.bytes == 90
    c.put(4, 1, 4, 500)  # bigger than the whole cache: not kept, nothing else evicted
    assert c.get(4, 1) is None and len(c) == 3
    c.put(0, 1, 0, 10)  # replacing an entry frees its old size
    assert c.bytes == 70
    off: VersionedCache[int] = VersionedCache(max_items=0, max_bytes=100)
    off.put("x", 1, 1, 1)
    assert off.get("x", 1) is None and len(off) == 0
