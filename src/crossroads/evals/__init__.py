"""Evaluation: suites, scorers, an async runner with cache and resume, and statistics."""
