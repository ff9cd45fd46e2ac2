"""What ``pip install govnet`` puts on a machine: one top-level package, ``govnet``.

Each of the folder names the package is built from (``node``, ``sync``, ``federation``,
``ops``, ``protos``) is already a published package; installing any of them as a
top-level name would break that package or ours. So these tests read what the installed
distribution says it installed (its ``top_level.txt``, its RECORD, and, for an editable
install, the finder's map of import names to folders and any path a ``.pth`` file adds),
check that the generated protobuf code registers its files in protobuf's global pool
under their package path (``govnet/v1/*.proto``, not ``protos/govnet/v1/*.proto``), and
that the ``protobuf`` requirement admits no runtime older than the generated code accepts.

The distribution is looked up in the interpreter's site-packages, not on the whole
``sys.path``: run from the repository root, the source tree's own ``govnet.egg-info``
(left by the build) is importable too, and it would answer for the source, not for what
was installed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.resources
import sysconfig
from pathlib import Path, PurePosixPath

import pytest
from google.protobuf import descriptor_pool
from packaging.requirements import Requirement
from packaging.version import Version

ONE_NAME = "govnet"


def installed() -> importlib.metadata.Distribution:
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    found = list(importlib.metadata.distributions(name=ONE_NAME, path=paths))
    assert len(found) == 1, f"expected govnet installed once in {paths}, found {len(found)}"
    return found[0]


def is_ours(name: str) -> bool:
    """Whether a dotted import name lies inside the one package."""
    return name == ONE_NAME or name.startswith(ONE_NAME + ".")


def top_level_names_of_record(dist: importlib.metadata.Distribution) -> set[str]:
    """The importable top-level names the RECORD's files provide (a package folder or a
    module file beside site-packages' other packages)."""
    names = set()
    for file in dist.files or ():
        parts = PurePosixPath(str(file)).parts
        if parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
            continue  # scripts, caches and the distribution's own metadata
        if len(parts) == 1:
            if parts[0].endswith(".pth") or parts[0].startswith("__editable__"):
                continue  # the editable install's hook, read below
            names.add(parts[0].removesuffix(".py"))
        else:
            names.add(parts[0])
    return names


def editable_mapping(dist: importlib.metadata.Distribution) -> dict[str, str]:
    """The import names an editable install maps to folders (setuptools' finder module):
    its MAPPING and NAMESPACES, read as literals rather than imported."""
    mapping: dict[str, str] = {}
    for file in dist.files or ():
        name = PurePosixPath(str(file)).name
        if not (name.startswith("__editable__") and name.endswith("_finder.py")):
            continue
        tree = ast.parse(Path(str(dist.locate_file(file))).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.AnnAssign | ast.Assign):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(isinstance(t, ast.Name) and t.id in ("MAPPING", "NAMESPACES") for t in targets):
                    assert node.value is not None
                    mapping.update({k: str(v) for k, v in ast.literal_eval(node.value).items()})
    return mapping


def paths_added_by_pth_files(dist: importlib.metadata.Distribution) -> list[str]:
    """Lines of the distribution's .pth files that put a folder on sys.path (lines that
    run an import, like the editable finder's hook, add none)."""
    added = []
    for file in dist.files or ():
        if str(file).endswith(".pth"):
            for line in Path(str(dist.locate_file(file))).read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith(("#", "import ", "import\t")):
                    added.append(line.strip())
    return added


def test_the_distribution_installs_one_top_level_package_govnet() -> None:
    dist = installed()
    assert (dist.read_text("top_level.txt") or "").split() == [ONE_NAME]
    assert top_level_names_of_record(dist) <= {ONE_NAME}
    mapped = editable_mapping(dist)
    assert [name for name in mapped if not is_ours(name)] == []
    # An old-style editable install adds the source folder to sys.path instead, which would
    # make node, sync, federation, ops and protos importable as top-level names.
    assert paths_added_by_pth_files(dist) == []
    # And the package is really there: an install that maps nothing installs nothing.
    assert mapped or ONE_NAME in top_level_names_of_record(dist)
    assert importlib.import_module("govnet.node").__name__ == "govnet.node"


def proto_files() -> list[str]:
    found = sorted(p.name for p in importlib.resources.files("govnet.v1").iterdir() if p.name.endswith(".proto"))
    assert found, "no .proto files installed with govnet.v1"
    return found


@pytest.mark.parametrize("proto", proto_files())
def test_each_proto_file_registers_under_its_package_path(proto: str) -> None:
    module = importlib.import_module(f"govnet.v1.{proto.removesuffix('.proto')}_pb2")
    assert module.DESCRIPTOR.name == f"govnet/v1/{proto}"
    pool = descriptor_pool.Default()
    assert pool.FindFileByName(f"govnet/v1/{proto}").package == "govnet.v1"
    with pytest.raises(KeyError):
        pool.FindFileByName(f"protos/govnet/v1/{proto}")


def runtime_version_needed(proto: str) -> Version:
    """The oldest protobuf runtime a generated module accepts: the version in its call to
    ``_runtime_version.ValidateProtobufRuntimeVersion(domain, major, minor, patch, suffix, file)``."""
    source = importlib.resources.files("govnet.v1").joinpath(f"{proto.removesuffix('.proto')}_pb2.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "ValidateProtobufRuntimeVersion":
            major, minor, patch = (ast.literal_eval(arg) for arg in node.args[1:4])
            return Version(f"{major}.{minor}.{patch}")
    raise AssertionError(f"{proto}: the generated module checks no runtime version")


def test_the_protobuf_requirement_admits_only_runtimes_the_generated_code_accepts() -> None:
    needed = max(runtime_version_needed(proto) for proto in proto_files())
    (requirement,) = [r for r in map(Requirement, installed().requires or ()) if r.name == "protobuf"]
    lower = [Version(s.version) for s in requirement.specifier if s.operator in (">=", ">", "==", "~=")]
    assert lower and min(lower) >= needed, f"{requirement} admits runtimes older than {needed}"
    # The runtime must have the generated code's major version, no other.
    assert requirement.specifier.contains(needed)
    assert not requirement.specifier.contains(Version(f"{needed.major + 1}.0.0"))
