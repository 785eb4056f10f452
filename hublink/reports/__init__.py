"""Showing results to people: overlap and count tables, charts, the quality report, progress.

Each module takes the plain values a client returns (``hublink.clients``) or
a report message and draws or prints it; none of them talks to the
coordinator.
"""
