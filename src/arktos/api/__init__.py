"""Resource kinds, scopes, validation, defaulting, selectors and patches: pure data, no I/O."""
