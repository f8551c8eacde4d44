"""Benchmarks for whisper-api; shared pieces live in `bench.harness`. Run from the repository root."""
