"""Field errors shaped like the API server's (k8s.io/apimachinery/pkg/util/validation/field).

``str(error)`` prints exactly what ``kubectl`` shows for an invalid object, e.g.
``spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range...``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class ErrorType(enum.Enum):
    NOT_FOUND = "Not found"
    REQUIRED = "Required value"
    DUPLICATE = "Duplicate value"
    INVALID = "Invalid value"
    NOT_SUPPORTED = "Unsupported value"
    FORBIDDEN = "Forbidden"
    TOO_LONG = "Too long"
    TOO_MANY = "Too many"


# Types whose message never repeats the offending value (as in apimachinery's ErrorBody).
_VALUELESS = {ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG}


@dataclass(frozen=True)
class FieldError:
    type: ErrorType
    field: str
    value: Any = None
    detail: str = ""

    def __str__(self) -> str:
        body = self.type.value
        if self.type not in _VALUELESS:
            body = f"{body}: {format_value(self.value)}"
        if self.detail:
            body = f"{body}: {self.detail}"
        return f"{self.field}: {body}"


class GoLiteral(str):
    """A value already written as Go's %#v prints it (a slice, a struct), shown verbatim."""


def go_strings(values: Any) -> GoLiteral:
    """``[]string{"a", "b"}``: how the API server shows a list of strings in a message."""
    items = values if isinstance(values, list) else [values]
    return GoLiteral("[]string{" + ", ".join(json.dumps(str(v)) for v in items) + "}")


def go_service_port_key(protocol: Any, port: Any) -> GoLiteral:
    """The (protocol, port) key the API server shows for a duplicate Service port."""
    return GoLiteral(
        f'core.ServicePort{{Name:"", Protocol:{json.dumps(str(protocol or ""))}, '
        f"AppProtocol:(*string)(nil), Port:{port if isinstance(port, int) else 0}, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def format_value(value: Any) -> str:
    """Render a value as Go's %v/%q would in an apimachinery message."""
    if isinstance(value, GoLiteral):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class Path:
    """A field path: ``Path("spec").child("ports").index(0).child("nodePort")``.

    Validation names a path for every field it looks at, error or not; the paths of fields
    (not of list items) are made once and kept, which is a tenth of validating a Service."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def child(self, *names: str) -> Path:
        key = (self._text, names)
        known = _CHILDREN.get(key)
        if known is not None:
            return known
        text = self._text
        for name in names:
            text = f"{text}.{name}" if text else name
        if len(_CHILDREN) >= _MAX_KNOWN_CHILDREN:
            _CHILDREN.clear()  # hostile input with many list items must not grow it unbounded
        path = _CHILDREN[key] = Path(text)
        return path

    def index(self, i: int) -> Path:
        return Path(f"{self._text}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self._text}[{k}]")

    def __str__(self) -> str:
        return self._text

    # constructors for each error type, so rules read like validation.go
    def invalid(self, value: Any, detail: str) -> FieldError:
        return FieldError(ErrorType.INVALID, self._text, value, detail)

    def required(self, detail: str = "") -> FieldError:
        return FieldError(ErrorType.REQUIRED, self._text, None, detail)

    def duplicate(self, value: Any) -> FieldError:
        return FieldError(ErrorType.DUPLICATE, self._text, value)

    def forbidden(self, detail: str) -> FieldError:
        return FieldError(ErrorType.FORBIDDEN, self._text, None, detail)

    def not_supported(self, value: Any, supported: list[str]) -> FieldError:
        detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
        return FieldError(ErrorType.NOT_SUPPORTED, self._text, value, detail)

    def too_long(self, limit: int) -> FieldError:
        return FieldError(ErrorType.TOO_LONG, self._text, None, f"must have at most {limit} bytes")


_CHILDREN: dict[tuple[str, tuple[str, ...]], Path] = {}
_MAX_KNOWN_CHILDREN = 4096
