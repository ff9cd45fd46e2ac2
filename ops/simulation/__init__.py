"""A whole federation simulated in one process: the harness (``harness``), the caseload, the
fault schedule, the self-check and the ``govnet simulate`` driver (``run``)."""
