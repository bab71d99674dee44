"""The life cycle of the in-memory address index (citygrid/address/resolve.py): loaded on first use, loaded again
when the address base changes, shared by every request of a process.

The address base is rebuilt as a whole (citygrid/address/base.py), which rewrites its `data_source` row
(`address-<county>`); the newest `loaded_at` of those rows is the stamp an index was built from. Each `get`
reads the stamp (one indexed query) and rebuilds under one lock when it moved, so concurrent requests never
build twice and never see a half-built index. The API creates one `AddressIndexCache` in its lifespan
(api/main.py) and hands the index to routes through a dependency (api/deps.py).
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.address.resolve import AddressIndex
from citygrid.security.principal import ANONYMOUS
from citygrid.security.scope import scoped


class AddressIndexCache:
    """One `AddressIndex` of the database behind `engine`, kept as fresh as the address base's stamp."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._index: AddressIndex | None = None
        self._stamp: datetime | None = None

    def get(self) -> AddressIndex:
        """The index of the current address base, (re)built first when it is missing or older than the base."""
        with self.engine.connect() as c:
            scoped(c, ANONYMOUS)  # the index is the public's: door plates and roads, never persons
            stamp = c.execute(text("SELECT max(loaded_at) FROM data_source WHERE name LIKE 'address-%'")).scalar()
            with self._lock:
                if self._index is None or self._stamp != stamp:
                    self._index = AddressIndex.load(c)
                    self._stamp = stamp
                return self._index
