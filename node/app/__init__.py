"""Units of work: what the node does, each as transactions over the store.

The desk (intake and actions on cases), replication (how a received message changes
this node's cases), supervision (alarms, ratings, complaints), the statistics ledger
and the links (this node's side of sync: the up-link toward its parent, the children's
side). Each reads rows through the store, asks the pure domain (or federation/sync) for
a verdict and writes it; no gRPC here.
"""
