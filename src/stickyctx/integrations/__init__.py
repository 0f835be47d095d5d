"""Integrations, each imported on demand: ``stickyctx.integrations.agents`` (the OpenAI Agents
SDK, an optional extra: ``pip install 'stickyctx[agents]'``) and
``stickyctx.integrations.inference`` (routing hints for inference routers; no extra needed)."""
