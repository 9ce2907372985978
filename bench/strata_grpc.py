"""Shared by the bench/ clients: strata.v1 Python stubs generated at run time from
proto/strata/v1/strata.proto with grpcio-tools (the project venv has it), and free local ports."""
import os
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_stubs(tmp, tool="bench"):
    """Generates the stubs into tmp/stubs and returns (strata_pb2, strata_pb2_grpc)."""
    try:
        import grpc  # noqa: F401
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as e:
        sys.exit(f"{tool}: needs grpcio and grpcio-tools ({e}); run it with ~/.cache/strata/venv/bin/python")
    out = os.path.join(tmp, "stubs")
    os.makedirs(out, exist_ok=True)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{ROOT}/proto", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", f"{ROOT}/proto/strata/v1/strata.proto"])
    if rc != 0:
        sys.exit(f"{tool}: protoc failed on proto/strata/v1/strata.proto")
    sys.path.insert(0, out)
    from strata.v1 import strata_pb2, strata_pb2_grpc
    return strata_pb2, strata_pb2_grpc


def free_ports(n):
    """n distinct ports free right now on 127.0.0.1."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports
