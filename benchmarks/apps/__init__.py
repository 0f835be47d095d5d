"""Apps the end-to-end benchmark serves next to the examples."""
