"""Adapters of escort to the outside systems (SMS)."""
