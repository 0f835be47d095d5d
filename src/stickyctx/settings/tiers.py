"""Checks of the PostgreSQL settings: the store's URL and the cold tier's."""

from __future__ import annotations

__all__ = ["cold_tier_problem", "is_postgres_url"]


def is_postgres_url(url: str) -> bool:
    return url.partition("://")[0].lower() in ("postgresql", "postgres")


def cold_tier_problem(cold_url: str | None, cold_after: int, idle_ttl: int,
                      uses_redis: bool) -> tuple[str, str] | None:
    """``(variable, reason)`` when the cold tier's settings do not fit together, else ``None``."""
    if cold_url is not None:
        if not is_postgres_url(cold_url):
            return "COLD_URL", "must be a postgresql:// URL"
        if not uses_redis:
            return "COLD_URL", ("needs a Redis store (STICKYCTX_STORE_URL): the cold tier holds "
                                "what Redis stops holding")
    if cold_after <= 0:
        return "COLD_AFTER", "must be a positive number of seconds"
    if cold_url is not None and cold_after >= idle_ttl:
        return "COLD_AFTER", ("must be below STICKYCTX_IDLE_TTL (sessions would expire before "
                              "they go cold)")
    return None
