"""The tamper-evident audit log as anyone can check it, with nothing but the coordinator's key.

``merkle`` builds the RFC 6962 tree and its proofs, ``checkpoint`` signs and
reads C2SP checkpoints, ``log`` holds entries, receipts, exports and the
offline verifier, ``trail`` tells the log in sentences, and ``sources``
reads it from an export or from the coordinator's database. The coordinator
writes the log with these same modules; nodes check their receipts with them.
"""
