"""Faults the lab can break its hosts with, grouped by the checks that find them."""
