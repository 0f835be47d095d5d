"""The example apps and their chat page, on real servers and in a real browser."""
