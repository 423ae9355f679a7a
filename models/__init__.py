"""Pydantic models of what invoke-audit reads: CloudTrail records, the allowlist, policies."""
