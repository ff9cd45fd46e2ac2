"""govnet: one node service for a tiered government-service network.

The installed package is assembled from the repository's top-level folders (see
setup.py): ``govnet.node`` (the domain and the node process), ``govnet.federation``
(the tree), ``govnet.sync`` (store-and-forward), ``govnet.ops`` (operating nodes from
outside; the ``govnet`` command) and ``govnet.v1`` (code generated from the .proto
files beside this file, never edited by hand).
"""
