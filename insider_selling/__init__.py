"""Insider Selling: the composition root (settings, CLI, runtime wiring)."""
