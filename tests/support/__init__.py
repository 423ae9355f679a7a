"""What the tests share (test modules import from here, never from one another or a conftest):

- `records`: the CloudTrail record builder (also the bench's), envelopes, accounts;
- `allowlists`, `policies`, `golden`: test allowlists, sample policies, hand-written rewrites;
- `aws`: the moto world (`World`, `aws()`, resources, fake credentials, a call recorder);
- `fakes`: in-memory fakes of the ports;
- `lambda_runtime`: the Lambda context, SQS events, printed logs and metrics;
- `shape_check`: the statement-shape check of a rewrite;
- `corpus`, `strategies`, `checks`, `faults`, `pipeline`, `synth`, `files`: the shared
  corpus, hypothesis strategies, the reliability checks, fault injection, the remediator
  Lambda on the emulator's server, the CDK synth of every variant, paths.

Sample Lambda events are JSON files in `emulator/samples` (`load_sample`), which the demo
reads too.
"""
