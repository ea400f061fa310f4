"""Pillarbox: a complete Internet mail server."""

__version__ = "0.1.0"
