"""The controller manager process: shared informers, every enabled controller, and leader
election so that of several instances only one acts at a time."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace

from arktos.client.events import EventRecorder
from arktos.client.informer import InformerFactory
from arktos.client.leaderelection import LeaderElector
from arktos.client.rest import ApiClient
from arktos.controllers.base import Context, Controller
from arktos.controllers.settings import Settings

log = logging.getLogger(__name__)
LEASE_NAME = "arktos-controller-manager"
EVENT_QPS = 100
Factory = Callable[[Context], Controller]


def identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"


class ControllerManager:
    def __init__(self, api: ApiClient, controllers: Sequence[Factory], *,
                 settings: Settings | None = None, name: str = "") -> None:
        self.api = api
        self.factories = list(controllers)
        self.settings = settings or Settings()
        self.identity = name or identity()
        self.controllers: list[Controller] = []

    async def run(self) -> None:
        """Run until cancelled; with leader election, only while holding the lease."""
        if not self.settings.leader_elect:
            await self.run_controllers()
            return
        elector = LeaderElector(self.api, name=LEASE_NAME, identity=self.identity,
                                lease_duration=self.settings.lease_duration,
                                renew_deadline=self.settings.renew_deadline,
                                retry_period=self.settings.retry_period)
        while True:
            await elector.run(self.run_controllers)
            log.warning("lost leadership; waiting to be elected again")

    async def run_controllers(self) -> None:
        informers = InformerFactory(self.api, resync_period=self.settings.resync_period)
        # Events go through their own client so that recording them never eats the rate
        # budget of the controllers' real work.
        events_api = ApiClient(replace(self.api.config, qps=EVENT_QPS, burst=EVENT_QPS * 2))
        ctx = Context(self.api, informers, EventRecorder(events_api, "controller-manager"),
                      self.settings)
        self.controllers = [make(ctx) for make in self.factories]
        async with events_api, asyncio.TaskGroup() as tg:
            tg.create_task(informers.run())
            await informers.wait_synced(timeout=120)
            log.info("informers synced; starting %s",
                     ", ".join(c.name for c in self.controllers))
            for controller in self.controllers:
                tg.create_task(controller.run())
