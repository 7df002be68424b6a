"""Plot the API benchmark figures in bench/results/api-*.json to docs/img/api-bench.png, and
(when present) bench/results/scheduler.json to docs/img/scheduler-bench.png.

Usage: .venv/bin/python bench/plot.py (needs the docs extra: pip install -e '.[docs]')
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
PANELS = [("creates_per_s", "creates/s", 1500), ("create_p99_ms", "create p99 (ms)", 50),
          ("list_s", "list 10k pods (s)", 0.5), ("watch_p99_ms", "watch delivery p99 (ms)", 100)]


def main() -> None:
    results = [json.loads(p.read_text()) for p in sorted((ROOT / "bench/results").glob("api-*.json"))]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(14, 3.2))
    for ax, (key, title, target) in zip(axes, PANELS, strict=True):
        names = [r["backend"] for r in results]
        ax.bar(names, [r[key] for r in results], color=["#4c72b0", "#dd8452"][: len(results)])
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=7)
    fig.suptitle("API server, 10,000 pods, 32 clients, 100 watchers (2-core machine)")
    fig.tight_layout()
    out = ROOT / "docs/img/api-bench.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)
    plot_scheduler()


def plot_scheduler() -> None:
    """End-to-end scheduling throughput and latency vs node count (bench/scheduler.py)."""
    path = ROOT / "bench/results/scheduler.json"
    if not path.exists():
        return
    runs = [r for r in json.loads(path.read_text())["runs"] if not r.get("timed_out")]
    nodes = [r["nodes"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(nodes, [r["e2e_pods_per_s"] for r in runs], marker="o", label="bound/s")
    left.plot(nodes, [r["create_pods_per_s"] for r in runs], marker="x", linestyle=":",
              label="created/s")
    left.axhline(1000, color="grey", linestyle="--", linewidth=1, label="target")
    left.set(title="pods/s, end to end", xlabel="nodes", ylim=(0, None))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        right.plot(nodes, [r[key] for r in runs], marker="o", label=label)
    right.set(title="create-to-bind latency (ms)", xlabel="nodes", ylim=(0, None))
    for ax in (left, right):
        ax.legend(loc="lower right", fontsize=7)
    pods = runs[0]["pods"] if runs else 0
    fig.suptitle(f"Scheduler, {pods:,} pods (2-core machine)")
    fig.tight_layout()
    out = ROOT / "docs/img/scheduler-bench.png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
