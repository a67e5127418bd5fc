"""Documentation of the controller-only action plugins/action/converged_fingerprint.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: converged_fingerprint
short_description: Fingerprint of the inputs of a converge (controller only)
description:
  - sha256 over the collection's roles, playbooks and plugins, the ansible-core version, and for
    every inventory host its variables as written (untemplated) plus the facts the roles read
    (addresses, memory, cores, distribution). Runs on the controller; makes no change.
  - Used by prodready.webstack.converged to skip a host whose inputs and live state are unchanged
    since its last full converge.
options: {}
author: prodready.webstack maintainers
"""

EXAMPLES = r"""
- name: Fingerprint the inputs of this converge
  prodready.webstack.converged_fingerprint:
  register: __fingerprint
"""

RETURN = r"""
fingerprint:
  description: sha256 hex digest.
  returned: always
  type: str
"""
