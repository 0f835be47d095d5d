"""Small apps that tests serve from real server processes."""
