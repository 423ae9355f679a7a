"""Unit tests: pure, no mocks, no network."""
