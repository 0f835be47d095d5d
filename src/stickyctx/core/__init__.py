"""The pure core: decisions over plain data, with no I/O, no ``async``, no store, no web edge."""
