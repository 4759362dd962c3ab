"""Browser tests: a package, so that their files may share a basename with a unit test (test_handover.py)."""
