"""`nodeport-lb verify`: check a deployed chain host by host and end to end.

The checks are a pytest-testinfra suite (``suite/``, also reachable as ``tests/infra``) so users
can run them with plain pytest; this package holds what the suite compares against: the
inventory, the control plane's Services and EndpointSlices, and HAProxy's config and runtime.
"""
