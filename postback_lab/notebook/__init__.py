"""Notebook layer: HTML views (Jinja2 templates) and the lazily imported widget explorer."""
