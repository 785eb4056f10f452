"""gRPC transport for the coordinator: servicers translate protobuf to the core and back."""
