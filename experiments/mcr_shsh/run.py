"""Runs the SHSH-MCR studies of one config variant; writes PNGs, summary.md and summary.json.

python experiments/mcr_shsh/run.py smoke runs/mcr_shsh_smoke [study ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jaxmicro._modules import load_file_module
from jaxmicro.reconstruct import report

HERE = Path(__file__).parent
get_config = load_file_module(HERE / "config.py").get_config
_studies = load_file_module(HERE / "studies.py")
STUDIES, setup, summary_markdown = _studies.STUDIES, _studies.setup, _studies.summary_markdown


def main(variant: str, out: str, studies=None) -> dict:
    """Runs ``studies`` (default all, names of ``STUDIES``); returns their numbers."""
    config = get_config(variant)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = setup(config)
    numbers = {}
    for name in studies or STUDIES:
        start = time.perf_counter()
        numbers[name] = STUDIES[name](s, out)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    numbers["peak_rss_mb"] = report.peak_rss_mb()
    report.write_json(out / "summary.json", numbers)
    (out / "summary.md").write_text(summary_markdown(config, numbers))
    return numbers


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "smoke", args[1] if len(args) > 1 else "runs/mcr_shsh_smoke", args[2:]
    )
