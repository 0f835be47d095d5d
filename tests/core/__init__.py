"""Unit tests of the pure core (and of settings)."""
