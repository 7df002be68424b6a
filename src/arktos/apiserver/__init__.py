"""The API server: routing, handlers, watch cache, discovery."""
