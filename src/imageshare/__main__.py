"""``python -m imageshare`` runs the ``xds`` command."""

from imageshare.cli import main

main()
