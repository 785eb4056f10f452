"""Attacks on what a node sends, run on plain bit arrays, to measure what encodings disclose.

Every attack here works on what a coordinator (or anyone holding its store)
has: numpy arrays of bits, one row per record, plus public knowledge such as a
list of names with approximate frequencies. Nothing here imports the node or
the coordinator: tests and benches build encodings with the node's own code
(``node.encoder.Encoder``) and hand the arrays in, so the attacks run on
exactly what is sent.

* ``unbalance`` — undo complement balancing without the key.
* ``frequency`` — line up frequent encodings (or clusters) with frequent names.
* ``patterns`` — mine bit positions set together, map them to q-grams, decode.
* ``graph`` — match a similarity graph of encodings to one of public names.
* ``blocks`` — find the records sharing a value in a record-level encoding alone.
* ``bridge`` — join a salted filter's clusters across salts through record-CLK blocks.
* ``atoms`` — the positions of single q-grams, as bicliques of blocks x positions.
* ``names`` — Zipf-like populations of thousands of pronounceable synthetic names.

The measure throughout is ``reidentified``: the share of ALL records whose
value the attacker names correctly.
"""
