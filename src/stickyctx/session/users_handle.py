"""The faces of ``UserSpace``: ``Users`` (ASGI, awaited) and ``SyncUsers`` (WSGI), and
``get_users`` that builds one for a request.

As with the conversation handles (``handle``), every method is declared once from a
``UserSpace`` operation, so both faces have the same methods and signatures by construction.

    users = get_users(request, principal=current_user.id)
    info = await users.create(title="Trip to Lisbon")
    conv = await users.open(info["id"])       # a Conversation: append, window, ...
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ..errors import NotSignedInError
from ..sansio import Op, run_async, run_sync
from .handle import Conversation, SyncConversation
from .lookup import get_context
from .users import UserSpace

__all__ = ["SyncUsers", "Users", "get_users", "principal_of"]

T = TypeVar("T")
P = ParamSpec("P")


class _operation(Generic[P, T]):
    """A method of both faces, declared once from a ``UserSpace`` operation."""

    def __init__(self, op: Callable[Concatenate[UserSpace, P], Op[T]]) -> None:
        self.op = op
        self.__doc__ = op.__doc__
        self.name = op.__name__

    @overload
    def __get__(self, face: Users, owner: Any) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, face: SyncUsers, owner: Any) -> Callable[P, T]: ...

    @overload
    def __get__(self, face: None, owner: Any) -> _operation[P, T]: ...

    def __get__(self, face: Any, owner: Any) -> Any:
        if face is None:
            return self
        op = self.op

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return face._drive(op(face._space, *args, **kwargs))

        method.__name__ = self.name
        method.__doc__ = self.__doc__
        return method


class _Face:
    __slots__ = ("_handle", "_space")

    def __init__(self, space: UserSpace, handle: Conversation | SyncConversation) -> None:
        self._space = space
        self._handle = handle  # the request's own handle: its session drives the I/O

    create = _operation(UserSpace.create)
    get = _operation(UserSpace.get)
    list = _operation(UserSpace.list)
    rename = _operation(UserSpace.rename)
    relabel = _operation(UserSpace.relabel)
    delete = _operation(UserSpace.delete)
    add_member = _operation(UserSpace.add_member)
    remove_member = _operation(UserSpace.remove_member)
    memory = _operation(UserSpace.memory)
    remember = _operation(UserSpace.remember)
    forget = _operation(UserSpace.forget)
    state = _operation(UserSpace.state)
    set_state = _operation(UserSpace.set_state)
    erase = _operation(UserSpace.erase)

    @property
    def principal(self) -> str:
        return self._space.principal

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tenant={self._space.tenant!r}>"  # never the principal


class Users(_Face):
    """A principal's conversations and memory in an ASGI app. Every method is awaited."""

    __slots__ = ()

    async def _drive(self, op: Op[T]) -> T:
        return await run_async(op, self._space.store.async_io)

    async def open(self, conversation_id: str) -> Conversation:
        """The conversation's handle (``append``, ``messages``, ``window``, ...), bound to
        this request: its turn commits with the response, as the request's own session's
        does. ``ConversationNotFoundError`` unless it is the principal's."""
        session = await self._drive(self._space.open(conversation_id))
        return Conversation(session)


class SyncUsers(_Face):
    """The same in a WSGI app: the same methods, not awaited."""

    __slots__ = ()

    def _drive(self, op: Op[T]) -> T:
        return run_sync(op, self._space.store.sync_io)

    def open(self, conversation_id: str) -> SyncConversation:
        """The conversation's handle, bound to this request (see ``Users.open``)."""
        return SyncConversation(self._drive(self._space.open(conversation_id)))


def principal_of(request: Any) -> str | None:
    """The principal a request's authentication left on it, if any: Starlette's
    ``AuthenticationMiddleware`` (``scope["user"]``, when authenticated: its ``identity``, else
    its ``display_name``), or the WSGI ``REMOTE_USER`` a server or middleware set."""
    scope = getattr(request, "scope", None)
    environ = getattr(request, "environ", None)
    if isinstance(request, Mapping):
        scope, environ = (request, None) if "type" in request else (None, request)
    if isinstance(scope, Mapping):
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        name = getattr(user, "identity", None) or getattr(user, "display_name", None)
        return str(name) if name else None
    if isinstance(environ, Mapping):
        remote = environ.get("REMOTE_USER")
        return remote if isinstance(remote, str) and remote else None
    return None


def get_users(request: Any, principal: str | None = None, *,
              tenant: str = "") -> Users | SyncUsers:
    """The principal's conversations and memory for this request (``Users`` under ASGI,
    ``SyncUsers`` under WSGI). ``principal`` is the signed-in user's id in the app's own
    authentication (stickyctx does none); without it, the one that authentication left on the
    request (``principal_of``), else ``NotSignedInError`` (401). ``tenant`` namespaces
    principals and conversation ids. Accepts what ``get_context`` accepts."""
    handle = get_context(request)
    if principal is None:
        principal = principal_of(request)
        if principal is None:
            raise NotSignedInError
    request_session = handle._session
    space = UserSpace(request_session.services, request_session.store, principal,
                      tenant=tenant, request=request_session)
    if isinstance(handle, Conversation):
        return Users(space, handle)
    return SyncUsers(space, handle)
