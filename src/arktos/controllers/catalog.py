"""Every controller the controller manager can run, by name (`--controllers` picks some)."""

from __future__ import annotations

from arktos.controllers.deployment import DeploymentController
from arktos.controllers.eventttl import EventTTLController
from arktos.controllers.garbagecollector import GarbageCollector
from arktos.controllers.manager import Factory
from arktos.controllers.namespace import NamespaceController
from arktos.controllers.nodelifecycle import NodeLifecycleController
from arktos.controllers.podgc import PodGCController
from arktos.controllers.replicaset import ReplicaSetController
from arktos.controllers.resourcequota import ResourceQuotaController
from arktos.controllers.serviceaccount import ServiceAccountController
from arktos.controllers.tenant import TenantController

CONTROLLERS: dict[str, Factory] = {
    "tenant": TenantController,
    "namespace": NamespaceController,
    "garbage-collector": GarbageCollector,
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "node-lifecycle": NodeLifecycleController,
    "pod-gc": PodGCController,
    "event-ttl": EventTTLController,
    "serviceaccount": ServiceAccountController,
    "resourcequota": ResourceQuotaController,
}
