"""The progress callback every long job takes: `(stage, done, total or None)`.

Its own module so that the packages a job runs (security's re-encryption, the demo, grids) need not import
`citygrid.jobs`, which depends on the database layer that depends on them.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int | None], None]
