"""Helpers the test suite shares: stores called directly, ports, readiness, example apps."""
