"""The hublink node: runs inside one organisation.

Raw identifiers never leave this package's process: only encodings, random
tokens and released coarse attributes are sent. A record's path, one module
per stage:

    source     node.source      read the export (CSV: encoding and delimiter by
                                node.detect; XLSX: node.xlsx; FHIR NDJSON: node.fhir),
                                map its columns (a full-name column split by node.names)
    consent    node.consent     decide each record (rules from node.policy_file)
    prepare    node.prepare     normalise each row (per-field rules in node.normalise);
                                an unusable value is missing, counted by node.checks
               node.intake      the three above in one pass, with the rejects file
    encode     node.encoder     keyed Bloom-filter encodings (node.hardening, node.derived)
    upload     node.workflow    the upload run: tokens (node.tokens), the gRPC client
                                (node.uploader), the signed receipt (node.receipts)
    keys       node.keys        fetch the linkage keys and write linked.csv

Beside them: node.credentials (identity, secret, channel), node.errors (the
exception tree), node.plan (a dry run), node.withdraw, and the secret
exchange (node.secret_workflow over node.secret_exchange and node.secret_client).
"""
