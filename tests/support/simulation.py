"""The simulation harness lives in the package (``govnet.ops.simulation.harness``, which
``govnet simulate`` drives); this name is kept for tests written against the old place."""

from govnet.ops.simulation.harness import *  # noqa: F403
from govnet.ops.simulation.harness import _calendar  # noqa: F401
