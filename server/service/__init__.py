"""The control plane: validates, decides with the pure domain, and persists in one transaction."""
