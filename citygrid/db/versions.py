"""Data versions of layers, and the one in-process cache shape that is kept honest by them.

Every write to a layer's table bumps that layer's row in `layer_version`, once per statement, by triggers
(migrations 0002 for `city_object` → `class-<code>` and `division` → `divisions`; 0009 for `grid` →
`grids-<system>` and `addr_node` → `doorplates`; the ids are those of `citygrid.layers.sources`). A cached
entry is stored with the version it was built at and served only while that is still the layer's version,
so a write is visible on the next request, in every worker process, with no messaging between them.
Reading the version costs one primary-key lookup.

The version is read before the data: if a write lands in between, the entry holds newer data under the
older version, which is never served again (the current version is already newer). Stale data is never
served.

Cache policy of the project: data that a write can change is cached only here, in a `VersionedCache`
(pages and tiles in `citygrid.layers`, grid and division outlines in `citygrid.layers.aggregate`); values that
live as long as the process (the catalog, CRS transformers, the engine) are `functools.lru_cache` singletons.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection

V = TypeVar("V")


# The layer's data version as a SQL expression over the parameter :version_of (the layer id), so a statement that
# reads the version can read something else in the same trip (`citygrid.layers.tiles`, `features`).
VERSION_SQL = "coalesce((SELECT version FROM layer_version WHERE layer = :version_of), 0)"


def layer_version(conn: Connection, layer: str) -> int:
    """The layer's data version; 0 for a layer never written since the database was created."""
    return int(conn.execute(text(f"SELECT {VERSION_SQL}"), {"version_of": layer}).scalar_one())


def layer_versions(conn: Connection, layers: list[str]) -> dict[str, int]:
    """`layer_version` of several layers in one statement (a list of collections), 0 for those never written."""
    found = dict(conn.execute(text("SELECT layer, version FROM layer_version WHERE layer = ANY(:l)"),
                              {"l": layers}).tuples().all())
    return {layer: int(found.get(layer) or 0) for layer in layers}


class VersionedCache(Generic[V]):
    """LRU bounded by entry count and by bytes; an entry is valid only for the version it was built at."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._d: OrderedDict[Hashable, tuple[int, int, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_items, self.max_bytes = max_items, max_bytes
        self.bytes = 0
        self.hits = self.misses = 0

    def get(self, key: Hashable, version: int) -> V | None:
        with self._lock:
            e = self._d.get(key)
            if e is None or e[0] != version:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return e[2]

    def holds(self, key: Hashable) -> bool:
        """Whether an entry (of any version) is kept for `key`: then a caller reads the version before building
        anything, else it reads both at once (`citygrid.db.aio`)."""
        with self._lock:
            return key in self._d

    def put(self, key: Hashable, version: int, value: V, size: int) -> None:
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            if size > self.max_bytes or self.max_items <= 0:
                return
            self._d[key] = (version, size, value)
            self.bytes += size
            while len(self._d) > self.max_items or self.bytes > self.max_bytes:
                _, (_, s, _) = self._d.popitem(last=False)
                self.bytes -= s

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._d)
