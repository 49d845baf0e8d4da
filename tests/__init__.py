"""sessionauth tests."""
