"""The node proxy agent: kube-proxy-compatible NodePort rules in nftables and the
healthCheckNodePort server (design.md §3.3)."""
