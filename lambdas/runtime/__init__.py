"""What the pipeline's functions share at run time: settings loaded once per container
(`settings`), logs and metrics (`telemetry`), where a violation goes (`report`, which brings
in boto3 and is imported only when there is a violation), Security Hub findings (`findings`,
only with SECURITY_HUB_FINDINGS on) and a per-container quiet period."""
