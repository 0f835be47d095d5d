"""Streamed replies: numbered chunks, resume, stop, disconnects, abandoned replies."""
