"""Tests of the Redis store against real private Redis servers (standalone, Cluster, Sentinel)."""
