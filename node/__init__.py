"""The hublink node: runs inside one organisation.

read → consent → normalise → encode → upload → keys. Raw identifiers never
leave this package's process: only encodings, random tokens and released
coarse attributes are sent.
"""
