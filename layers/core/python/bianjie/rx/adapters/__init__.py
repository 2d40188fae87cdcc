"""Adapters of the rx service: the I/O its ports are reached through (HTTP to the NHSA center)."""
