"""The node process: configuration, the composition root that builds a node from its
configuration, clock and transport, the gRPC and HTTP servers, metrics and logs."""
