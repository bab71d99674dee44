"""Logging in (OAuth2 password flow, so `/docs` has an Authorize button) and asking who one is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import current_principal
from api.openapi import errors, ok
from api.schemas import PrincipalOut, TokenOut
from citygrid.security import credentials, tokens
from citygrid.security.principal import SYSTEM, Principal
from citygrid.security.scope import scoped

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", summary="Log in with username and password; a short-lived bearer token",
             responses=ok(TokenOut) | errors(401, 429, 503))
def token(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> dict[str, Any]:
    with request.app.state.engine.connect() as c:
        p = credentials.login(scoped(c, SYSTEM), form.username, form.password)  # credentials are the process's
    access, ttl = tokens.issue(p)
    return {"access_token": access, "token_type": "bearer", "expires_in": ttl}


@router.get("/me", summary="The calling principal: kind, roles with their scopes, clearance",
            responses=ok(PrincipalOut))
def me(p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return p.to_dict()
