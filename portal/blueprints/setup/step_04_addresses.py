"""Setup step 4, Copy addresses: the country, city, township and district tree from Omnitron."""
from __future__ import annotations

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_sync import _step


@bp.get("/addresses")
def addresses():
    """Step 4: copy the address tree from Omnitron."""
    return _step("addresses")
