"""Helpers shared by the test suites and the benchmarks: namespace labs, object builders, and
stand-ins for what cannot run here (a Kubernetes API's list and watch), each at its real
boundary."""
