"""Drives started maintenances through their steps by commanding agents."""
