"""Renderings of runs: text summaries and JSON documents (pure functions returning strings)."""
