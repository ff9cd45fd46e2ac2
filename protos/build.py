"""Generate the Python protobuf and gRPC modules from ``protos/govnet/v1/*.proto``.

This is the one script that does it; the package build (``setup.py``) calls it, and it
can be run by hand with ``python protos/build.py``. The output depends only on the
.proto files and the pinned grpcio-tools version (see pyproject.toml), so it is
reproducible. The .proto files are compiled under their package path (``govnet/v1``,
with ``protos/`` as the include root), so they register in protobuf's pool as
``govnet/v1/*.proto`` and the generated modules import each other as ``govnet.v1``;
they are written next to the .proto files, which ``setup.py`` installs as ``govnet.v1``.

The generated Python code carries no comments (protoc leaves ``source_code_info`` out of
the descriptors it embeds), so the same run also writes ``descriptors.binpb``: a
``FileDescriptorSet`` of every file with its imports and its source info (comments,
spans). Server reflection answers from it (``node.rpc.services``), which is how
``grpcurl describe`` and other reflection clients show the .proto comments (a field's
limits, whether it is required).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROTO_DIR = ROOT / "govnet" / "v1"
DESCRIPTOR_SET = "descriptors.binpb"  # in PROTO_DIR: installed with the package as govnet.v1 data


def generate(root: Path = ROOT) -> list[Path]:
    """Run protoc over every .proto file; return the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(PROTO_DIR.glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_DIR}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={root}",
        f"--pyi_out={root}",
        f"--grpc_python_out={root}",
        f"--descriptor_set_out={root / 'govnet' / 'v1' / DESCRIPTOR_SET}",
        "--include_source_info",
        "--include_imports",
        *(str(p.relative_to(root)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + ", ".join(p.name for p in protos))
    return [*sorted(PROTO_DIR.glob("*_pb2*.py*")), PROTO_DIR / DESCRIPTOR_SET]


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT), file=sys.stdout)
