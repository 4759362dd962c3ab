"""Setup step 5, Copy stores: stores and warehouses (stock locations) from Omnitron."""
from __future__ import annotations

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_sync import _step


@bp.get("/stock-locations")
def stock_locations():
    """Step 5: copy stores and warehouses from Omnitron."""
    return _step("stock_locations")
