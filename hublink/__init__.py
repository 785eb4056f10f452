"""hublink: privacy-preserving federated record linkage for family services.

This small package holds what both sides share: the generated protobuf
modules (``hublink.v1``), configuration types, certificate identities and
TLS loading, and the command-line entry point that dispatches to ``node``
and ``coordinator``. The node never imports the coordinator, nor the
coordinator the node.
"""

__version__ = "0.1.0"
