"""Helpers that tests and benchmarks share: real speech, random converters, a bot harness. Not shipped."""
