"""Clients of the coordinator for the people around a project, and the one channel they share.

``open_channel`` turns a party's config into a mutual-TLS channel; an admin
starts runs (``AdminClient``), an analyst asks for protected counts
(``AnalystClient``), an IG officer reads the audit log (``AuditClient``).
Every refused call raises ``RequestRefused``, the node's uploader included.
"""

from hublink.clients.admin import AdminClient, RunReport
from hublink.clients.analyst import AnalystClient, CountCell, Counts, Overlap, OverlapCell
from hublink.clients.audit import AuditClient, Filters
from hublink.clients.channel import ReachesCoordinator, open_channel
from hublink.clients.refused import TRANSIENT, RequestRefused

__all__ = [
    "TRANSIENT",
    "AdminClient",
    "AnalystClient",
    "AuditClient",
    "CountCell",
    "Counts",
    "Filters",
    "Overlap",
    "OverlapCell",
    "ReachesCoordinator",
    "RequestRefused",
    "RunReport",
    "open_channel",
]
