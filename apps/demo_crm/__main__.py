"""`python -m apps.demo_crm`: serve the demo CRM/ERP.

Environment: DEMO_CRM_HOST (127.0.0.1), DEMO_CRM_PORT (8100), DEMO_CRM_TOKEN (the bearer token
Kefu's `demo-crm` connector sends), DEMO_CRM_KEFU_URL (where webhooks go, e.g.
http://127.0.0.1:8000; empty sends none), DEMO_WEBHOOK_SECRET (whsec_...),
DEMO_CRM_SHIP_AFTER_S (ship PP-1002 this many seconds after start; 0 = never).
"""

from __future__ import annotations

import logging
import os
import threading

from .server import DemoCRM, make_server

DEFAULT_SECRET = "whsec_a2VmdS1kZW1vLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM="


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s: %(message)s")
    host = os.environ.get("DEMO_CRM_HOST", "127.0.0.1")
    port = int(os.environ.get("DEMO_CRM_PORT", "8100"))
    kefu = os.environ.get("DEMO_CRM_KEFU_URL", "").rstrip("/")
    crm = DemoCRM(
        token=os.environ.get("DEMO_CRM_TOKEN", "demo-crm-token"),
        webhook_url=f"{kefu}/webhooks/demo-crm/" if kefu else "",
        webhook_secret=os.environ.get("DEMO_WEBHOOK_SECRET", DEFAULT_SECRET),
    )
    ship_after = float(os.environ.get("DEMO_CRM_SHIP_AFTER_S", "0"))
    if ship_after > 0:
        timer = threading.Timer(ship_after, crm.ship, args=("PP-1002",))
        timer.daemon = True
        timer.start()
    server = make_server(crm, host, port)
    print(f"demo CRM/ERP listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
