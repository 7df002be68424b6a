"""The controller manager and its controllers: level-triggered reconcilers over informers."""
