"""What the tests share: in-memory fakes of the ports, builders, sample events."""
