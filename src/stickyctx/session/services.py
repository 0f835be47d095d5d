"""What one middleware derives once from ``Settings``: signer, keys, tokenizer, membership.

Both edges (ASGI and WSGI) hold one ``Engine`` and call it per request; the engine never
performs I/O itself and holds no per-request state.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..cluster.members import MembershipManager
from ..core.cookies import CookieSpec
from ..core.flow import FlowConfig, Membership, SessionState, identify, response_headers
from ..core.storekeys import KeyDeriver, derive_hash_key
from ..core.summarizer import ExtractiveSummarizer, Summarizer, load_summarizer
from ..core.tokenizer import Tokenizer, encoding_for, load_tokenizer
from ..core.tokens import TokenCodec
from ..settings import Settings
from ..telemetry import Telemetry

__all__ = ["Engine"]


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        keys = tuple(k.reveal() for k in settings.keys)
        self.codec = TokenCodec(keys, max_age=settings.absolute_ttl, clock=clock)
        self.flow = FlowConfig(
            node_id=settings.node_id,
            cookie_name=settings.cookie_name,
            route_cookie=settings.route_cookie,
            cookie=CookieSpec(
                secure=settings.secure_cookies,
                samesite=settings.cookie_samesite,
                domain=settings.cookie_domain,
                path=settings.cookie_path,
            ),
            absolute_ttl=settings.absolute_ttl,
            balance_factor=settings.balance_factor,
        )
        hash_key = settings.hash_key.reveal() if settings.hash_key else None
        self.keys = KeyDeriver(derive_hash_key(hash_key, keys), settings.namespace)
        # Loaded at startup so that a missing encoding is a ConfigError now, not at a request.
        self.tokenizer: Tokenizer = load_tokenizer(encoding_for(settings.encoding, settings.model))
        # The framing of the summary's system message, counted inside the summary budget.
        self.summary_frame = self.tokenizer.count_message({"role": "system", "content": ""})
        self.count_text = functools.lru_cache(maxsize=256)(self.tokenizer.count_text)
        self.builtin_summarizer = ExtractiveSummarizer(self.tokenizer)
        self.summarizer: Summarizer = (load_summarizer(settings.summarizer) if settings.summarizer
                                       else self.builtin_summarizer)
        self.members = MembershipManager(settings, clock)
        self.telemetry = Telemetry(
            node_id=settings.node_id,
            db_system="redis" if settings.uses_redis else None,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            active_sessions=self.members.active.count,
        )
        self.members.on_change = self.telemetry.membership
        self.idempotency_header = settings.idempotency_header.lower() or None

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def session_hash(self, session_id: str) -> str:
        """How telemetry names a session: a keyed hash, never the id itself."""
        return self.keys.digest("telemetry\x00" + session_id)

    def membership(self) -> Membership:
        return self.members.view()

    def identify(self, cookie_headers: Sequence[str], session_header: str | None) -> SessionState:
        state = identify(cookie_headers, session_header, self.codec, self.flow,
                         self.members.view(), self.clock())
        self.observe(state)
        if self.telemetry.active():
            self.telemetry.affinity(state, self.session_hash)
        return state

    def observe(self, state: SessionState) -> None:
        """Count a placement toward its node's load, and this node's own active sessions."""
        if state.reissue and state.affinity in ("new", "failover"):
            self.members.placed(state.owner)
        if state.owner == self.settings.node_id:
            self.members.active.touch(state.session_id)

    def response_headers(self, state: SessionState) -> list[tuple[str, str]]:
        return response_headers(state, self.codec, self.flow, self.members.view(), self.clock())
