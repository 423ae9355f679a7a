"""The remediator Lambda and the remediation flow it shares with `invoke-audit remediate`."""
