"""The conversation routes of the Flask example (``conversation_routes(settings, system)``, a
blueprint): signed-in users, many conversations each, a memory that follows the user."""

from __future__ import annotations

from typing import Any

import flask

from ..errors import StickyctxError, http_error
from ..session.users_handle import SyncUsers, get_users
from ..settings import Settings
from . import BackendError, reply
from .accounts import LOGIN_COOKIE, learned_name, login_cookie, memory_value, read_login, valid_user

__all__ = ["conversation_routes"]


def _error(status: int, code: str, detail: str) -> Any:
    return {"error": code, "detail": detail}, status


def conversation_routes(settings: Settings, system: str) -> flask.Blueprint:
    routes = flask.Blueprint("conversations", __name__)
    secure = bool(settings.cookie_secure) if settings.cookie_secure is not None else (
        not settings.dev)

    def users() -> SyncUsers:
        user = read_login(settings, flask.request.cookies.get(LOGIN_COOKIE))
        if user is None:
            flask.abort(flask.make_response(
                _error(401, "unauthorized", "sign in first: POST /login")))
        found = get_users(flask.request, user)  # (``stickyctx.flask.current_users`` too)
        assert isinstance(found, SyncUsers)
        return found

    @routes.errorhandler(StickyctxError)
    def stickyctx_error(exc: StickyctxError) -> Any:  # 404 for another user's conversation
        answer = http_error(exc)
        if answer is None:
            raise exc
        return flask.Response(answer[1], status=answer[0], mimetype="application/json")

    @routes.post("/login")
    def login() -> Any:
        body = flask.request.get_json(silent=True)
        user = body.get("user") if isinstance(body, dict) else None
        if not valid_user(user):
            return _error(422, "invalid_user", "a user name is 1 to 64 letters, digits or _.-")
        assert isinstance(user, str)
        response = flask.jsonify({"user": user})
        response.set_cookie(LOGIN_COOKIE, login_cookie(settings, user), httponly=True,
                            samesite="Lax", secure=secure)
        return response

    @routes.post("/logout")
    def logout() -> Any:
        response = flask.jsonify({"signed_out": True})
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @routes.post("/conversations")
    def create() -> Any:
        body = flask.request.get_json(silent=True)
        title = body.get("title") if isinstance(body, dict) else None
        made = users().create(title=title if isinstance(title, str) else None)
        return {"id": made["id"]}

    @routes.get("/conversations")
    def listing() -> Any:
        limit = flask.request.args.get("limit", "20")
        return users().list(limit=int(limit) if limit.isdigit() else 20,
                            cursor=flask.request.args.get("cursor"))

    @routes.delete("/conversations/<conversation_id>")
    def delete(conversation_id: str) -> Any:
        users().delete(conversation_id)
        return {"deleted": True}

    @routes.post("/conversations/<conversation_id>/chat")
    def chat(conversation_id: str) -> Any:
        mine = users()
        conv = mine.open(conversation_id)
        body = flask.request.get_json(silent=True)
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message.strip():
            detail = 'expected a JSON object {"message": "..."} with a non-empty string'
            return _error(422, "invalid_message", detail)
        conv.append("user", message.strip())
        name = learned_name(message)
        if name is not None:
            mine.remember("name", name)
        try:
            answer = reply(conv.window(system=system))
        except BackendError as exc:
            return _error(502, "backend_failed", str(exc))
        conv.append("assistant", answer)
        return {"reply": answer, "node": conv.node_id, "owner": conv.owner,
                "affinity": conv.affinity, "turns": conv.turn_count(),
                "tokens": conv.token_count()}

    @routes.get("/conversations/<conversation_id>/history")
    def history(conversation_id: str) -> Any:
        return {"messages": users().open(conversation_id).messages()}

    @routes.get("/me/memory")
    def memory() -> Any:
        return {"memory": users().memory()}

    @routes.put("/me/memory/<key>")
    def remember(key: str) -> Any:
        value = memory_value(flask.request.get_json(silent=True))
        if value is None:
            return _error(422, "invalid_value", 'expected a JSON object {"value": "..."}')
        return {"key": key, "tokens": users().remember(key, value)}

    @routes.delete("/me")
    def erase() -> Any:
        deleted = users().erase()
        response = flask.jsonify({"erased": True, "conversations": deleted})
        response.delete_cookie(LOGIN_COOKIE)
        return response

    return routes
