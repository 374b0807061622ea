"""The kinds of traffic, one method each: control plane, other clients, people reading and
people changing the cluster. :class:`audittui.demo.cluster.Cluster` weighs and draws them."""
