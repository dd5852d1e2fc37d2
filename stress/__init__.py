"""`make stress`: the broker under hostile clients and a flaky machine (see stress/README.md)."""
