"""The root of the errors hublink's shared package raises for a person to fix.

Every one is raised with a sentence that names the file, key, certificate or
call at fault and holds no record data. The ``hublink`` command catches the
root, prints the sentence on one line and exits with status 1
(``hublink.cli.errors``); a library caller can catch the root or one leaf.
Each leaf also keeps the built-in class it always had (``ValueError`` or
``RuntimeError``), so existing ``except`` clauses keep working.

    HublinkError
    ├── ConfigError        a TOML file is unreadable, or a key unknown or of the wrong type
    │                                                               hublink.config
    ├── SpecError          the linkage schema is not a valid clkhash v3 schema   hublink.spec
    ├── TlsConfigError     certificate, key or CA file missing or not a pair      hublink.tls
    ├── InvalidIdentity    a certificate names no single hublink identity     hublink.identity
    ├── BackupError        a backup folder is incomplete, altered, or would overwrite
    │                                                                        hublink.backup
    ├── CheckpointError    a checkpoint or key line is malformed or badly signed
    │                                                              hublink.audit.checkpoint
    ├── AuditFileError     an audit export, note or receipt file cannot be read
    │                                                                     hublink.audit.log
    ├── SourceError        an audit command named no log, or two         hublink.audit.sources
    ├── RequestRefused     the coordinator refused a call (carries its gRPC status)
    │                                                                hublink.clients.refused
    └── DemoError          ``hublink demo`` cannot run in the folder given    hublink.demo.run

Not in the tree, on purpose: outcomes a caller handles rather than reports
(``merkle.ProofError``, ``log.ReceiptError``, ``log.ForkDetected``,
``sealing.SignatureError``), and ``demo.audit.AuditCheckFailed``, which
would be a bug and should show its traceback.
"""

from __future__ import annotations


class HublinkError(Exception):
    """Base of every error in the shared package that is the user's to fix."""
