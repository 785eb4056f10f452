"""Generated protobuf and gRPC modules for ``hublink.v1`` (do not edit; tests/unit/test_project_files.py checks they match proto/)."""
