"""The hublink coordinator: receives encodings, matches them, releases keys and counts.

``coordinator.core`` is the domain (store, matching, keys, counts, audit) and
knows nothing of gRPC; ``coordinator.rpc`` is the thin transport around it.
"""
