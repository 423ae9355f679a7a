"""The ingest Lambda: judges the CloudTrail log files the trail delivers to S3."""
