"""Test scaffolding: in-process nodes, the deterministic simulation harness, fake people."""
