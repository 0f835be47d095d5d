"""The conversation routes of the FastAPI example: signed-in users, many conversations each,
a memory that follows the user (``add_conversation_routes(app, settings, system)``).

What a user of stickyctx writes for their own app is the same: a dependency that names the
principal from the app's own authentication, ``get_users`` (or ``stickyctx.fastapi.users_of``)
over it, and the routes.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, which
# name ``UserData``, a local alias, at runtime.
from typing import Annotated, Any

from fastapi import Cookie, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StringConstraints

from ..session.users_handle import Users, get_users
from ..settings import Settings
from . import BackendError, areply
from .accounts import LOGIN_COOKIE, learned_name, login_cookie, read_login, valid_user

__all__ = ["add_conversation_routes"]


class LoginIn(BaseModel):
    user: str


class MessageIn(BaseModel):
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ValueIn(BaseModel):
    value: str


class TitleIn(BaseModel):
    title: str | None = None


def add_conversation_routes(app: FastAPI, settings: Settings, system: str) -> None:
    secure = bool(settings.cookie_secure) if settings.cookie_secure is not None else (
        not settings.dev)

    def current_user(login: Annotated[str | None, Cookie(alias=LOGIN_COOKIE)] = None) -> str:
        user = read_login(settings, login)
        if user is None:
            raise HTTPException(401, "sign in first: POST /login")
        return user

    async def user_data(request: Request,
                        user: Annotated[str, Depends(current_user)]) -> Users:
        found = get_users(request, user)  # (``stickyctx.fastapi.users_of`` does the same)
        assert isinstance(found, Users)
        return found

    UserData = Annotated[Users, Depends(user_data)]

    @app.post("/login")
    async def login(body: LoginIn, response: Response) -> dict[str, str]:
        if not valid_user(body.user):
            raise HTTPException(422, "a user name is 1 to 64 letters, digits or _.-")
        response.set_cookie(LOGIN_COOKIE, login_cookie(settings, body.user), httponly=True,
                            samesite="lax", secure=secure)
        return {"user": body.user}

    @app.post("/logout")
    async def logout(response: Response) -> dict[str, bool]:
        response.delete_cookie(LOGIN_COOKIE)
        return {"signed_out": True}

    @app.post("/conversations")
    async def create(users: UserData, body: TitleIn | None = None) -> dict[str, Any]:
        made = await users.create(title=body.title if body else None)
        return {"id": made["id"]}

    @app.get("/conversations")
    async def listing(users: UserData, limit: int = 20,
                      cursor: str | None = None) -> dict[str, Any]:
        return await users.list(limit=limit, cursor=cursor)

    @app.delete("/conversations/{conversation_id}")
    async def delete(conversation_id: str, users: UserData) -> dict[str, bool]:
        await users.delete(conversation_id)
        return {"deleted": True}

    @app.post("/conversations/{conversation_id}/chat", response_model=None)
    async def chat(conversation_id: str, body: MessageIn,
                   users: UserData) -> dict[str, Any] | JSONResponse:
        conv = await users.open(conversation_id)
        await conv.append("user", body.message)
        name = learned_name(body.message)
        if name is not None:
            await users.remember("name", name)
        try:
            answer = await areply(await conv.window(system=system))
        except BackendError as exc:
            return JSONResponse({"error": "backend_failed", "detail": str(exc)}, status_code=502)
        await conv.append("assistant", answer)
        return {"reply": answer, "node": conv.node_id, "owner": conv.owner,
                "affinity": conv.affinity, "turns": await conv.turn_count(),
                "tokens": await conv.token_count()}

    @app.get("/conversations/{conversation_id}/history")
    async def history(conversation_id: str, users: UserData) -> dict[str, Any]:
        conv = await users.open(conversation_id)
        return {"messages": await conv.messages()}

    @app.get("/me/memory")
    async def memory(users: UserData) -> dict[str, Any]:
        return {"memory": await users.memory()}

    @app.put("/me/memory/{key}")
    async def remember(key: str, body: ValueIn, users: UserData) -> dict[str, Any]:
        tokens = await users.remember(key, body.value)
        return {"key": key, "tokens": tokens}

    @app.delete("/me")
    async def erase(users: UserData, response: Response) -> dict[str, Any]:
        deleted = await users.erase()
        response.delete_cookie(LOGIN_COOKIE)
        return {"erased": True, "conversations": deleted}
