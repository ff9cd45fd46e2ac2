"""Build hook and package map.

govnet installs as one top-level package, ``govnet``, assembled from the repository's
top-level folders: ``protos/govnet`` is the package root (its ``v1`` holds the code
generated from the .proto files, which keep their package path ``govnet/v1``), and
``node/``, ``sync/``, ``federation/`` and ``ops/`` become ``govnet.node``, ``govnet.sync``,
``govnet.federation`` and ``govnet.ops``. The protobuf modules are generated before
packaging. Everything else about the package lives in pyproject.toml.
"""

import runpy
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FOLDERS = {
    "govnet": "protos/govnet",
    "govnet.node": "node",
    "govnet.sync": "sync",
    "govnet.federation": "federation",
    "govnet.ops": "ops",
}


def packages() -> list[str]:
    found = []
    for name, folder in FOLDERS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(str(HERE / folder)))
    return found


class BuildWithProtos(build_py):
    def run(self) -> None:
        runpy.run_path(str(HERE / "protos" / "build.py"))["generate"]()
        super().run()


setup(packages=packages(), package_dir=FOLDERS, cmdclass={"build_py": BuildWithProtos})
