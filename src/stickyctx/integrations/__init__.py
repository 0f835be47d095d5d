"""Integrations with agent frameworks, each an optional extra imported on demand:
``stickyctx.integrations.agents`` (the OpenAI Agents SDK, ``pip install 'stickyctx[agents]'``)."""
