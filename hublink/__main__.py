"""``python -m hublink`` runs the same command as ``hublink``."""

from hublink.cli import main

main()
