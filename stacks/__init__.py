"""The CDK app of invoke-audit: one construct per unit, composed by the stacks."""
