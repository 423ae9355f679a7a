"""invoke-audit's code: the pure core, the AWS adapters, the Lambda handlers and the CLI."""
