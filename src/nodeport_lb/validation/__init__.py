"""Validation that mirrors the Kubernetes API server, message for message."""

from nodeport_lb.validation.endpointslice import EndpointSliceProblems, validate_endpoint_slice
from nodeport_lb.validation.field import ErrorType, FieldError, Path
from nodeport_lb.validation.service import (
    DEFAULT_SERVICE_IP_FAMILIES,
    IP_FAMILIES,
    validate_service,
    validate_service_object,
)

__all__ = [
    "DEFAULT_SERVICE_IP_FAMILIES",
    "IP_FAMILIES",
    "EndpointSliceProblems",
    "ErrorType",
    "FieldError",
    "Path",
    "validate_endpoint_slice",
    "validate_service",
    "validate_service_object",
]
