"""Setup step 6, Copy channels: the sales channels from Omnitron."""
from __future__ import annotations

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_sync import _step


@bp.get("/channels")
def channels():
    """Step 6: copy the sales channels from Omnitron."""
    return _step("channels")
