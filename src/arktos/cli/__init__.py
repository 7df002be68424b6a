"""Command-line entry points: `arktos` (servers) and later `arkctl`."""
