"""``python -m repository ...``: the repository's commands without the ``xds`` umbrella."""

import logging

from repository.cli import repository

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
repository(prog_name="python -m repository")
