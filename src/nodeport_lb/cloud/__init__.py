"""Cloud load balancers (Exoscale NLB, AWS NLB) driven by Terraform, checking the hcnp over HTTP."""

from __future__ import annotations


class CloudError(Exception):
    """A problem the user can fix; the CLI prints it as one message, without a traceback.

    ``exit_code`` 2 means bad input (unreadable manifests, unknown Service), 1 a refused request
    or a failed Terraform run.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
