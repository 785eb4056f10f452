"""Generated protobuf and gRPC modules for ``hublink.v1`` (do not edit; see tests/unit/test_proto_drift.py)."""
