"""The transports that carry batches between a child and its parent: the interface
(``base``), the real one over gRPC (``grpc``, with the protobuf encoding of envelopes and
cursors in ``wire``) and an in-memory one with faults for tests and the simulation
(``memory``) — a real implementation of the same interface, not a mock."""
