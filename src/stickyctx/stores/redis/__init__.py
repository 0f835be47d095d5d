"""The Redis store: key schema and Lua scripts, the sans-I/O logic, and the thin client adapters."""
