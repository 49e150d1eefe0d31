"""Run the ``latentcast-client`` command as ``python -m latentcast_client``."""

from latentcast_client.cli import main

raise SystemExit(main())
