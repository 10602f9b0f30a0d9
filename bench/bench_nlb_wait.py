"""How fast ``components.ibmcloud create`` notices a ready certificate, and at what cost in CLI calls.

Runs the real module against the fake ``ibmcloud`` (tests/fake_ibmcloud) with the certificate
status flipping from ``creating`` to ``created`` a chosen delay after registration, and prints
per delay: the delay, how late the flip was seen (lag), the whole run's time, and the number
of ``nlb-dns ls`` polls and CLI calls.  The lag is bounded by one poll interval (``--poll-max``
at most) plus one CLI call; the polls grow only logarithmically until the cap.

    python bench/bench_nlb_wait.py --delays 0.5 1 2 4 --poll-initial 0.25 --poll-max 2

Everything happens in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_DIR = ROOT / "tests" / "fake_ibmcloud"
CLUSTER = "benchcluster"
ADDRESS = "169.61.10.5"


def measure(delay: float, poll_initial: float, poll_max: float, workdir: Path) -> dict[str, float]:
    """One create run against a fresh fake whose certificate is ready ``delay`` s after creation."""
    state_path = workdir / f"state-{delay:g}.json"
    state_path.write_text(
        json.dumps(
            {
                "clusters": {CLUSTER: {"type": "classic", "id": "bench"}},
                "status_sequence": [[0, "creating"], [delay, "created"]],
            }
        )
    )
    env = dict(os.environ)
    env.pop("PULUMI_COMMAND_STDOUT", None)
    env.pop("IBMCLOUD_BIN", None)
    env.update(
        PATH=os.pathsep.join([str(workdir / "bin"), str(FAKE_DIR), env.get("PATH", "")]),
        FAKE_IBMCLOUD_STATE=str(state_path),
    )
    args = [
        sys.executable, "-m", "components.ibmcloud", "create",
        "--cluster", CLUSTER, "--type", "classic", "--address", ADDRESS, "--secret-namespace", "istio-system",
        "--timeout", str(max(60.0, delay * 4)), "--poll-initial", str(poll_initial), "--poll-max", str(poll_max),
    ]
    start = time.time()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    end = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"create failed for delay {delay}: {proc.stderr.strip()}")
    state = json.loads(state_path.read_text())
    flipped = state["registrations"][0]["created_at"] + delay
    polls = [c["time"] for c in state["calls"] if c["argv"][:3] == ["ks", "nlb-dns", "ls"]]
    detected = polls[-1]
    return {
        "delay": delay,
        "lag": detected - flipped,
        "total": end - start,
        "polls": float(len(polls) - 1),  # minus the look-before-create
        "calls": float(len(state["calls"])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0],
                        help="seconds from registration until the certificate is ready")
    parser.add_argument("--poll-initial", type=float, default=0.25, help="first poll interval (module default 5)")
    parser.add_argument("--poll-max", type=float, default=2.0, help="longest poll interval (module default 60)")
    args = parser.parse_args()
    print(f"poll interval {args.poll_initial:g}s doubling to at most {args.poll_max:g}s")
    print(f"{'delay s':>8} {'lag s':>7} {'run s':>7} {'polls':>6} {'calls':>6}")
    with tempfile.TemporaryDirectory(prefix="bench-nlb-wait-") as tmp:
        workdir = Path(tmp)
        (workdir / "bin").mkdir()
        wrapper = workdir / "bin" / "python3"  # a new file: the fake's `env python3`, stdlib only, fast
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
        wrapper.chmod(0o755)
        for delay in args.delays:
            row = measure(delay, args.poll_initial, args.poll_max, workdir)
            print(f"{row['delay']:>8g} {row['lag']:>7.3f} {row['total']:>7.3f} {row['polls']:>6.0f} {row['calls']:>6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
