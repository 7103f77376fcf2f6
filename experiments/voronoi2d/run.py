"""Trains the Voronoi 2D experiment and writes a sample grid and a loss curve.

python experiments/voronoi2d/run.py smoke runs/voronoi2d_smoke
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax

from jaxmicro.train import fit, generate, load_experiment_config, load_model, save_grid


def main(variant: str, out: str) -> None:
    config = load_experiment_config(f"{Path(__file__).with_name('config.py')}:{variant}")
    fit(config, out, resume=True)
    x = generate(jax.random.key(1), load_model(out), 16, steps=50)
    save_grid(x, Path(out) / "final_samples.png")
    _loss_curve(Path(out) / "metrics.jsonl", Path(out) / "loss.png")


def _loss_curve(metrics: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set(xlabel="step", ylabel="loss", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) > 2 else ("smoke", "runs/voronoi2d_smoke")))
