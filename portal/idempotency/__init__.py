"""Stored answers to requests made with an Idempotency-Key header (the record and its upkeep; the API wraps it)."""
