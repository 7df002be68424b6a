"""Arktos in Python: a multi-tenant cluster manager for containers and VMs."""

__version__ = "0.1.0"
