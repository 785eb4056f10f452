"""Generated protobuf and gRPC modules for ``hublink.v1`` (do not edit; tests/repo/test_project_files.py checks they match proto/)."""
