"""conformance_tests package."""
