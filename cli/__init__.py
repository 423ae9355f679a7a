"""The `invoke-audit` command line."""
