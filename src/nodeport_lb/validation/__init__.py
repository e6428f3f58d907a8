"""Validation that mirrors the Kubernetes API server, message for message."""

from nodeport_lb.validation.field import ErrorType, FieldError, Path
from nodeport_lb.validation.service import validate_service

__all__ = ["ErrorType", "FieldError", "Path", "validate_service"]
