"""Test support code shared by every test suite: real services started on demand."""
