"""The infra tier runs jsii on the virtualenv's Node.js (set before any test imports aws_cdk);
its `synth` fixture is shared with the reliability tier (tests/conftest.py)."""

from __future__ import annotations

from tests.support.synth import use_venv_node

use_venv_node()
