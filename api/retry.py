"""A write whose transaction PostgreSQL aborted to break a deadlock (40P01) or a serialization failure (40001) is run
again, up to three times with a short random pause, so the caller never sees a failure that is nobody's fault.

Migration 0024 removes the deadlocks the trigger-kept counts caused; this is the net for what remains (a
transaction that writes two classes, or objects in two statements, in the opposite order to another). Only JSON
writes of up to `LIMIT` bytes are retried: their body can be replayed, and their route is one transaction, so an
aborted attempt left nothing behind. Uploads (multipart) are not: intake stores a file in one transaction and
processes it in another. The database error handler (api/errors.py) marks the request as retryable in its ASGI
scope; the answer of an attempt that will be retried is dropped unsent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRYABLE = frozenset({"40P01", "40001"})
FLAG = "citygrid.retry"
ATTEMPTS = 3
LIMIT = 1 << 20
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def mark(scope: MutableMapping[str, Any], exc: BaseException) -> None:
    """Called by the database error handler: flag the request when PostgreSQL aborted it to resolve a conflict."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in RETRYABLE:
        scope[FLAG] = True


class RetryAborted:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if not headers.get(b"content-type", b"").startswith(b"application/json") or not length.isdigit() \
                or int(length) > LIMIT:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before its body arrived
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        for attempt in range(1, ATTEMPTS + 1):
            attempt_scope = dict(scope)
            attempt_scope[FLAG] = False
            sent: list[Message] = []
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the disconnect, as the real receive would

            async def hold(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            await self.app(attempt_scope, replay, hold)
            if attempt_scope.get(FLAG) and attempt < ATTEMPTS:
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            for message in sent:
                await send(message)
            return
