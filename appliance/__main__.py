"""``python -m appliance`` is ``appliance-cli``."""

from appliance.cli import main

raise SystemExit(main())
