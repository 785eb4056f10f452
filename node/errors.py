"""The node's exception tree.

Every error the node raises on purpose is one of these, with a sentence a
person can act on that names the file, row, field, column or organisation
and never a record's value. Catching ``NodeError`` catches them all. Each
also keeps the built-in base it had before the tree existed (``ValueError``
for bad input, ``RuntimeError`` for a step that cannot go on), so code that
catches those still does. Each class lives beside the stage that raises it:

    NodeError                                                    node.errors
    ├── InputError            the export is unreadable or its header wrong node.source
    ├── UnknownEncoding       a text file's encoding cannot be told       node.detect
    ├── WorkbookError         an XLSX workbook or sheet cannot be read    node.xlsx
    ├── ResourceError         an NDJSON line is not a FHIR Patient        node.fhir
    ├── PolicyError           the consent policy cannot be used           node.policy_file
    ├── UndecidableRecord     a value a consent rule needs is unreadable  node.consent
    ├── NormalisationError    one value cannot be normalised              node.normalise
    │   └── Placeholder       a stand-in ("unknown", "N/A"), not a value  node.fields
    ├── RowError              the same, placed at a row and field         node.prepare
    ├── AttributeConfigError  attributes the project does not release     node.attributes
    ├── InputChanged          the CSV changed between reading and sending node.intake
    ├── UploadRejected        a resumed upload the coordinator dropped    node.uploader
    ├── ReceiptRefused        a receipt or log proof that does not verify node.receipts
    ├── ExchangeError         a secret-exchange key or envelope refused   node.secret_exchange
    └── RunError              a node command that cannot go on; what      node.errors
                              the others become when a run stops on them

``InputError``, ``UnknownEncoding``, ``WorkbookError``, ``ResourceError``,
``PolicyError``, ``UndecidableRecord``, ``NormalisationError``, ``RowError`` and
``AttributeConfigError`` are also ``ValueError`` (the reader's three become an
``InputError`` naming the file before they leave ``node.source``); the rest are
also ``RuntimeError``. When the coordinator says no over gRPC the node raises
``hublink.clients.RequestRefused``, shared with the admin, analyst and audit
clients, whose root is ``hublink.errors.HublinkError``.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node raises on purpose; the message holds no record data."""


class RunError(NodeError, RuntimeError):
    """A node command (upload, keys, plan, withdraw, secret exchange) that cannot go on.

    The message says what and where, in one line, for the CLI to print as it is.
    """
