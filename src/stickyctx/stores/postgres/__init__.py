"""The PostgreSQL store (``postgresql://``) and the cold tier's table (psycopg 3, a pool)."""
