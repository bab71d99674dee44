"""Short-lived signed bearer tokens for people who logged in (OAuth2 password flow, `POST /auth/token`).

A token is a JWT (HS256, pyjwt) with `sub` (the principal's id), `iss`, `aud`, `iat`, `exp` and the key id in
its header. It carries no rights: every request loads the principal and its grants, so disabling a principal or
changing its roles takes effect at once. The signing key is derived from the keyring's key named by `kid`
(`citygrid/security/keys.py`); after `citygrid keys rotate`, new tokens are signed with the new key and the old
ones keep working until they expire.
"""

from __future__ import annotations

import datetime as dt
import uuid

import jwt

from citygrid.errors import E
from citygrid.security.keys import get_keyring
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

ALGORITHM = "HS256"


def issue(principal: Principal) -> tuple[str, int]:
    """A token for a principal and its lifetime in seconds."""
    s = get_settings()
    kid, key = get_keyring().active_key("jwt")
    now = dt.datetime.now(dt.UTC)
    ttl = s.token_minutes * 60
    claims = {"sub": str(principal.id), "iss": s.token_issuer, "aud": s.token_audience, "iat": now,
              "exp": now + dt.timedelta(seconds=ttl), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid}), ttl


def subject(token: str) -> uuid.UUID:
    """The principal id a valid token names; a coded 401 for an expired, forged or malformed token."""
    return verify(token)[0]


def verify(token: str) -> tuple[uuid.UUID, dt.datetime]:
    """The principal id a valid token names and when the token expires (the credential cache keeps a token no
    longer than that); a coded 401 for an expired, forged or malformed token."""
    s = get_settings()
    ring = get_keyring()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or kid not in ring.keys:
            raise E.token_invalid("Authorization")
        claims = jwt.decode(token, ring.derive(kid, "jwt"), algorithms=[ALGORITHM], audience=s.token_audience,
                            issuer=s.token_issuer, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        return uuid.UUID(str(claims["sub"])), dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    except jwt.ExpiredSignatureError as exc:
        raise E.token_expired("Authorization") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise E.token_invalid("Authorization") from exc
