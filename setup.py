"""Build hook: the protobuf modules are generated from protos/ before packaging.

Everything else about the package lives in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithProtos(build_py):
    def run(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from protos.build import generate

        generate()
        super().run()


setup(cmdclass={"build_py": BuildWithProtos})
