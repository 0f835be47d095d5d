"""The store contract suite: one set of tests that every store backend must pass."""
