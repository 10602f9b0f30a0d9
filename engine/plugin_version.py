"""Print the version a Pulumi provider plugin reports over gRPC (``GetPluginInfo``).

Pulumi providers have no ``--version`` flag: the engine starts them, reads the port they print on
their first line of stdout and asks them over gRPC. This does the same, and stops the plugin.
Run it with the engine venv's Python (it needs the pulumi SDK's generated stubs and grpcio):

    <cache>/venv/bin/python engine/plugin_version.py <cache>/bin/pulumi-resource-kubernetes
"""

from __future__ import annotations

import subprocess
import sys


def plugin_version(binary: str, timeout: float = 30.0) -> str:
    import grpc  # type: ignore[import-untyped]
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import provider_pb2_grpc  # type: ignore[attr-defined]

    proc = subprocess.Popen([binary], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            proc.kill()
            err = proc.communicate(timeout=timeout)[1]
            raise RuntimeError(f"{binary} printed {port!r} instead of a port: {err.strip()[:400]}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            info = provider_pb2_grpc.ResourceProviderStub(channel).GetPluginInfo(empty_pb2.Empty(), timeout=timeout)
        return str(info.version)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PLUGIN_BINARY")
    print(plugin_version(sys.argv[1]))
