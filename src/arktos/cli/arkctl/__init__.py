"""`arkctl`: a kubectl-like command line for Arktos clusters (tenants above namespaces)."""
