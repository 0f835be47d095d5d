"""``Services``: what one middleware derives once from ``Settings`` and shares by every request.

A container, built at startup (so that a bad encoding or summarizer fails then, not at a
request): the token codec, the cookie and placement configuration, the store-key deriver, the
tokenizer and summarizers, the window parameters, the membership view and telemetry. It holds
no per-request state and performs no I/O.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..cluster.members import MembershipManager
from ..core.cookies import CookieSpec
from ..core.flow import FlowConfig
from ..core.storekeys import KeyDeriver, derive_hash_key
from ..core.summarizer import ExtractiveSummarizer, Summarizer, load_summarizer
from ..core.tokenizer import Tokenizer, encoding_for, load_tokenizer
from ..core.tokens import TokenCodec
from ..core.windowing import WindowParams
from ..settings import Settings
from ..telemetry import Telemetry
from ..telemetry.audit import Auditor, AuditSink, OtelAuditSink
from ..telemetry.streams import StreamTelemetry
from .live import LiveReplies
from .orphans import Orphans

__all__ = ["Services"]


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
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
                partitioned=settings.cookie_partitioned,
                persistent=settings.cookie_persistent,
            ),
            absolute_ttl=settings.absolute_ttl,
            balance_factor=settings.balance_factor,
            lazy=settings.cookie_issue == "lazy",
            exclude_paths=settings.exclude_paths,
        )
        hash_key = settings.hash_key.reveal() if settings.hash_key else None
        self.keys = KeyDeriver(derive_hash_key(hash_key, keys), settings.namespace)
        # Loaded at startup so that a missing encoding is a ConfigError now, not at a request.
        self.tokenizer: Tokenizer = load_tokenizer(encoding_for(settings.encoding, settings.model))
        # The framing of the summary's system message, counted inside the summary budget.
        summary_frame = self.tokenizer.count_message({"role": "system", "content": ""})
        self.window = WindowParams(
            token_budget=settings.token_budget,
            response_reserve=settings.response_reserve,
            summarize=settings.pruning == "summarize",
            summary_budget=settings.effective_summary_budget,
            summary_frame=summary_frame,
            eviction=settings.eviction,
            low_water=settings.low_water,
        )
        # A summary changes once per fold, a system prompt seldom: their counts are memoized.
        self.count_text = functools.lru_cache(maxsize=256)(self.tokenizer.count_text)
        self.builtin_summarizer = ExtractiveSummarizer(self.tokenizer)
        self.summarizer: Summarizer = (load_summarizer(settings.summarizer) if settings.summarizer
                                       else self.builtin_summarizer)
        self.members = MembershipManager(settings, clock)
        self.orphans = Orphans()  # turn leases left by a store fault (see ``orphans``)
        self.streams = LiveReplies()  # streamed replies generating on this node
        self.telemetry = Telemetry(
            node_id=settings.node_id,
            db_system="redis" if settings.uses_redis else None,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            active_sessions=self.members.active.count,
        )
        self.members.on_change = self.telemetry.membership
        # The audit trail: None when STICKYCTX_AUDIT is off (callers test for it, nothing more).
        self.audit: Auditor | None = None
        if settings.audit:
            sinks = {"otel": lambda: OtelAuditSink(logger_provider)}
            chosen: list[AuditSink] = [sinks[name]() for name in settings.audit]
            self.audit = Auditor(settings.node_id, chosen)
        self.stream_telemetry = StreamTelemetry(settings.node_id, self.telemetry.meter)
        self.idempotency_header = settings.idempotency_header.lower() or None

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def session_hash(self, session_id: str) -> str:
        """How telemetry names a session: a keyed hash, never the id itself."""
        return self.keys.digest("telemetry\x00" + session_id)

    def shorten_summary(self, text: str, budget: int) -> str:
        """The built-in summarizer's refit of a stored summary into ``budget`` tokens."""
        return str(self.builtin_summarizer(text, [], budget))
