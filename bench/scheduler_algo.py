"""Scheduler algorithm benchmark: pods/s of `schedule` + `assume` at 500, 1,000 and 5,000 nodes.

For each node count, builds a `NodeTable` of realistic nodes (hostname, one of 3 zones, an
instance type; 5% tainted; 10% VM-ready) and schedules 10,000 pods one after another,
assuming each where it goes. Pods come in ReplicaSets of 10-100 (80% container, 20% VM);
some ReplicaSets select a zone, some prefer an instance type, some spread by hostname with
required anti-affinity, some tolerate the taints. Parsing the pods (`pod_info`) is timed
separately: the algorithm figure is `schedule` + `assume` only. No API server, no I/O.

Usage: .venv/bin/python bench/scheduler_algo.py [--nodes 500,1000,5000] [--pods 10000]
       [--profile] [--out FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from arktos.scheduler.algorithm import assume, schedule
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podinfo import PodInfo, pod_info

ZONES = ("zone-a", "zone-b", "zone-c")
TYPES = ("standard", "highmem", "compute")
TAINTS = ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
          {"key": "maintenance", "value": "soon", "effect": "PreferNoSchedule"},
          {"key": "storage", "value": "local", "effect": "NoExecute"})
TENANTS = ("acme", "globex", "initech")


def node(i: int, rng: random.Random) -> dict[str, Any]:
    name = f"node-{i:05d}"
    vm = rng.random() < 0.10
    conditions = [{"type": "Ready", "status": "True"},
                  {"type": "ContainerRuntimeReady", "status": "True"}]
    if vm:
        conditions.append({"type": "VmRuntimeReady", "status": "True"})
    spec: dict[str, Any] = {}
    if rng.random() < 0.05:
        spec["taints"] = [rng.choice(TAINTS)]
    resources = {"cpu": "64", "memory": "256Gi", "ephemeral-storage": "500Gi", "pods": "110"}
    return {"metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": ZONES[i % 3],
                "node.kubernetes.io/instance-type": rng.choice(TYPES)}},
            "spec": spec,
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": conditions}}


def _spec(rng: random.Random, vm: bool, app: str) -> dict[str, Any]:
    if vm:
        res = {"requests": {"cpu": rng.choice(["1", "2"]),
                            "memory": rng.choice(["2Gi", "4Gi"])}}
        spec: dict[str, Any] = {"virtualMachine": {"name": "vm", "image": "cirros",
                                                   "resources": res}}
    else:
        res = {"requests": {"cpu": rng.choice(["100m", "250m", "500m", "1"]),
                            "memory": rng.choice(["128Mi", "256Mi", "512Mi", "1Gi"])}}
        spec = {"containers": [{"name": "app", "image": "nginx", "resources": res}]}
    if rng.random() < 0.2:
        spec["nodeSelector"] = {"topology.kubernetes.io/zone": rng.choice(ZONES)}
    affinity: dict[str, Any] = {}
    if rng.random() < 0.1:
        affinity["nodeAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In",
                 "values": [rng.choice(TYPES)]}]}}]}
    if rng.random() < 0.15:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}},
             "topologyKey": "kubernetes.io/hostname"}]}
    if affinity:
        spec["affinity"] = affinity
    if rng.random() < 0.05:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    return spec


def pods(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` pods in ReplicaSets of 10-100 (the last one possibly smaller)."""
    out: list[dict[str, Any]] = []
    rs = 0
    while len(out) < count:
        rs += 1
        size = min(rng.randint(10, 100), count - len(out))
        app = f"app-{rs}"
        tenant = rng.choice(TENANTS)
        spec = _spec(rng, rng.random() < 0.2, app)
        owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": app,
                  "uid": f"uid-rs-{rs}", "controller": True}]
        for i in range(size):
            out.append({"metadata": {"name": f"{app}-{i}", "namespace": "default",
                                     "tenant": tenant, "uid": f"uid-{rs}-{i}",
                                     "labels": {"app": app}, "ownerReferences": owner},
                        "spec": spec})
    return out


def run(num_nodes: int, infos: list[PodInfo], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    table = NodeTable()
    for i in range(num_nodes):
        table.upsert_node(node(i, rng))
    latencies = np.empty(len(infos))
    scheduled = 0
    clock = time.perf_counter
    begin = clock()
    for i, info in enumerate(infos):
        t0 = clock()
        decision = schedule(table, info)
        if decision.node is not None:
            assume(table, info, decision.node)
            scheduled += 1
        latencies[i] = clock() - t0
    seconds = clock() - begin
    return {"nodes": num_nodes, "pods": len(infos), "scheduled": scheduled,
            "unschedulable": len(infos) - scheduled, "seconds": round(seconds, 3),
            "pods_per_s": round(len(infos) / seconds),
            "p50_us": round(float(np.percentile(latencies, 50)) * 1e6, 1),
            "p99_us": round(float(np.percentile(latencies, 99)) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="500,1000,5000")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the largest run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    raw = pods(args.pods, random.Random(args.seed))
    begin = time.perf_counter()
    infos = [pod_info(p) for p in raw]
    parse_rate = round(len(raw) / (time.perf_counter() - begin))
    counts = [int(n) for n in args.nodes.split(",")]
    runs = [run(n, infos, args.seed) for n in counts]
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, counts[-1], infos, args.seed)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    result = {"pod_info_per_s": parse_rate, "runs": runs,
              "command": shlex.join(["python", *sys.argv])}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
