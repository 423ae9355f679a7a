"""invoke-audit tests."""
