"""Parvis: an open-source cockpit for community managers."""

__version__ = "0.1.0"
