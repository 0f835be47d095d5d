"""The cold tier: conversations idle past ``STICKYCTX_COLD_AFTER`` leave Redis for PostgreSQL
(``mover``) and come back on their next request (``tiered.TieredStore``)."""
