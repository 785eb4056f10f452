"""Coordinator domain core: no gRPC, no protobuf."""
