"""Cost of the program itself: whole program under mocks vs. importing the Pulumi packages it uses.

Runs each in N fresh processes (default 10), alternating, and prints the medians; the target is that the
program's own work adds less than 30% to the bare imports.  Measured, never asserted.
Usage: python bench/bench_program.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The baseline: the Pulumi packages the program uses, and Pulumi's mock runtime that stands in
#: for the engine (it is the harness, not the program: a real ``pulumi up`` has the engine instead).
IMPORTS = (
    "import pulumi, pulumi_command, pulumi_tls, pulumi_kubernetes.core.v1, pulumi_kubernetes.apps.v1, "
    "pulumi_kubernetes.networking.v1, pulumi_kubernetes.apiextensions, cryptography.x509, pulumi.runtime.mocks"
)
#: The whole program for the default stack (no pytest: tests/conftest.py is not imported).
PROGRAM = (
    "import sys; sys.path[:0] = [{root!r}]\n"
    "from tools import mock_program\n"
    "cluster = mock_program.ClusterStandIn(alb_domain='mycluster-0000.us-south.containers.appdomain.cloud',\n"
    "    alb_secret='mycluster-0000', gateway_addresses=['169.46.7.10'],\n"
    "    gateway_domain='mycluster-0001.us-south.containers.appdomain.cloud', gateway_secret='mycluster-0001')\n"
    "r = mock_program.render({{'cluster': 'mycluster'}}, cluster)\n"
    "assert r.error is None, r.error\n"
)


def seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    program_code = PROGRAM.format(root=str(ROOT))
    seconds(IMPORTS)  # warm the file cache once
    # Alternate the two, so drift in the machine's load hits both alike; compare pair by pair.
    imports, program = [], []
    for _ in range(runs):
        imports.append(seconds(IMPORTS))
        program.append(seconds(program_code))
    ratios = [p / i - 1 for i, p in zip(imports, program, strict=True)]
    print(f"runs per case: {runs} (alternating)")
    print(f"median imports only:          {statistics.median(imports):.3f} s")
    print(f"median whole program (mocks): {statistics.median(program):.3f} s")
    print(f"program's own work: median +{statistics.median(ratios) * 100:.0f}% per pair "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0] * 100:+.0f}% .. {statistics.quantiles(ratios, n=4)[2] * 100:+.0f}%; target < 30%)")


if __name__ == "__main__":
    main()
