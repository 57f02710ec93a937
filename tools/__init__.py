"""Command-line tools: training entry points, comparison, benchmarks, demo."""
