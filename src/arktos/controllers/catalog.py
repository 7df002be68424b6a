"""Every controller the controller manager can run, by name (`--controllers` picks some)."""

from __future__ import annotations

from arktos.controllers.manager import Factory

CONTROLLERS: dict[str, Factory] = {}
