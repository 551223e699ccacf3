"""Test support: paths to ../shared, database fixtures' helpers, sample-data factories."""
