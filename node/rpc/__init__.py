"""The RPC edge: gRPC servicers, conversion between domain values and generated
messages, the mapping of errors to status codes, and the typed client.

The only floor of node/ that imports the generated ``govnet.v1`` code.
"""
