"""nodeport-lb: the external load-balancer chain for Kubernetes Services with eTP Local."""

__version__ = "0.1.0"
