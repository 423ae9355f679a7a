"""Functional tests: handlers and adapters against moto and botocore's Stubber."""
