"""Adapters to storage and messaging systems, behind small ports."""
