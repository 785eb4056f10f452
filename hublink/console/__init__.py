"""``hublink console``: a local web console for IG officers, analysts and the linkage unit.

It is a client like the CLI: it talks to the coordinator only over the
existing gRPC API, as the identity in a client config, and shows the pages of
that identity's role (``profiles``). Pages are rendered on the server and need
no JavaScript (``app``, ``audit_views``, ``analyst_views``, ``admin_views``);
charts are SVG (``svg``); downloads are the released tables (``tables``). It
binds loopback and is locked with a per-launch token, session cookies, CSRF
tokens and a strict Content-Security-Policy (``security``); ``server`` runs it.
"""

from hublink.console.profiles import Profile, ProfileError, Settings, load_profile
from hublink.console.server import ConsoleServer

__all__ = ["ConsoleServer", "Profile", "ProfileError", "Settings", "load_profile"]
