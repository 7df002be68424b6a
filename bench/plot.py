"""Plot the API benchmark figures in bench/results/api-*.json to docs/img/api-bench.png.

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


if __name__ == "__main__":
    main()
