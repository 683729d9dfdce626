"""Thin HTTP adapters grouped by concern."""
