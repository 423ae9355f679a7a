"""The remediation flow, shared by the remediator function and `invoke-audit remediate` /
`restore`: `remediate` (one violation -> a rewritten policy, safely), `restore` (the undo),
`ports` (what the flow needs from AWS) and `wiring` (the flow built on boto3 adapters)."""
