"""hublink: privacy-preserving federated record linkage for family services.

The package's core holds what both sides share: the generated protobuf
modules (``hublink.v1``), typed configuration, certificate identities, PKI and
TLS loading, the linkage schema (``spec``), sealing for the secret exchange,
the error root (``errors``) and the audit log's tree, checkpoints and
verifier (``audit/``). The applications sit on top in their own subpackages:
``clients/``, ``reports/``, ``synthetic/``, and the two entry points
``cli/`` and ``demo/``, which alone import ``node`` and ``coordinator``. The
node never imports the coordinator, nor the coordinator the node.
"""

__version__ = "0.1.0"
