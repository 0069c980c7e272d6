"""Notifications about runs: monitoring pings for scheduled windows. A failing notifier only warns."""
