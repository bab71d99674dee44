"""The reference follower of the change feed (`citygrid sync`): pulls `GET /changes` page by page, appends each
entry as one JSON line to a file, and resumes where it stopped.

Resuming never skips or repeats: after a page's entries are appended and flushed to disk, the page's cursor is
written to a state file next to the output (`<out>.cursor`, replaced atomically). A crash between the two leaves
the state one page behind the file; so the resume point is the later of the state's cursor and the cursor of the
file's last entry, and a page is never written twice. Only the standard library speaks HTTP here, so a
department can copy this module as the start of its own client.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SyncResult:
    entries: int
    pages: int
    cursor: str


def _key(cursor: str) -> tuple[int, int]:
    xid, _, seq = cursor.partition("-")
    return (int(xid), int(seq)) if seq else (0, 0)


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".cursor")


def _last_entry_cursor(out: Path) -> str | None:
    """The cursor of the file's last complete line (read from the end: the file may be large)."""
    if not out.exists() or out.stat().st_size == 0:
        return None
    with out.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block = min(size, 65536)
        f.seek(size - block)
        lines = f.read().splitlines()
    for line in reversed(lines):
        try:
            cursor = json.loads(line).get("cursor")
        except (ValueError, AttributeError):
            continue  # a torn last line from a crash: ignored, its entry comes again
        if isinstance(cursor, str):
            return cursor
    return None


def _torn(out: Path) -> bool:
    if not out.exists() or out.stat().st_size == 0:
        return False
    with out.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def resume_cursor(out: Path, since: str | None) -> str:
    """`since` when given; else the later of the state file's cursor and the output's last entry; else the start."""
    if since is not None:
        return since
    found = [c for c in (_last_entry_cursor(out),
                         state_path(out).read_text().strip() if state_path(out).exists() else None) if c]
    return max(found, key=_key) if found else ""


def _get(url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"} | ({"X-API-Key": api_key} if api_key
                                                                              else {}))
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - the URL is the operator's setting
        body: dict[str, Any] = json.loads(r.read())
    return body


def sync(base_url: str, out: Path, *, since: str | None = None, api_key: str | None = None,
         filters: dict[str, str] | None = None, wait: int = 30, once: bool = False, limit: int = 500,
         on_page: Callable[[int, str], None] | None = None, retries: int = 5) -> SyncResult:
    """Follow the feed into `out`. `once`: stop as soon as the feed has nothing more (caught up); otherwise long
    poll for ever (Ctrl-C stops it; the next run resumes). Network errors are retried with a growing pause,
    `retries` times in a row at most."""
    cursor = resume_cursor(out, since)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = state_path(out)
    total = pages = failures = 0
    while True:
        params = {"since": cursor, "limit": str(limit), "wait": "0" if once else str(wait)} | (filters or {})
        url = base_url.rstrip("/") + "/changes?" + urllib.parse.urlencode(params)
        try:
            page = _get(url, api_key, timeout=wait + 30)
            failures = 0
        except urllib.error.HTTPError as e:
            if e.code < 500:
                raise  # a bad cursor, filter or key: retrying cannot help
            failures += 1
        except (urllib.error.URLError, OSError):
            failures += 1
        else:
            entries = page["entries"]
            if entries:
                torn = _torn(out)
                with out.open("a", encoding="utf-8") as f:
                    if torn:  # end a line cut off by a crash, so the entries that follow stay whole
                        f.write("\n")
                    for entry in entries:
                        f.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            if page["cursor"] != cursor or not state.exists():
                tmp = state.with_name(state.name + ".tmp")
                tmp.write_text(page["cursor"] + "\n")
                tmp.replace(state)
            cursor = page["cursor"]
            total += len(entries)
            pages += 1
            if on_page:
                on_page(len(entries), cursor)
            if once and not page["more"]:
                return SyncResult(total, pages, cursor)
            continue
        if failures > retries:
            raise ConnectionError(f"{base_url}: no answer after {retries} retries")
        time.sleep(min(2 ** failures * 0.5, 30))
