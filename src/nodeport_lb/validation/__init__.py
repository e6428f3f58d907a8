"""Validation that mirrors the Kubernetes API server, message for message."""

from nodeport_lb.validation.endpointslice import EndpointSliceProblems, validate_endpoint_slice
from nodeport_lb.validation.field import ErrorType, FieldError, Path
from nodeport_lb.validation.service import validate_service

__all__ = [
    "EndpointSliceProblems",
    "ErrorType",
    "FieldError",
    "Path",
    "validate_endpoint_slice",
    "validate_service",
]
