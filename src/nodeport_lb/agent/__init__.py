"""The node proxy agent: kube-proxy-compatible NodePort rules in nftables and the
healthCheckNodePort server."""
