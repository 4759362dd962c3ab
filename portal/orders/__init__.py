"""Order import: fetch Omnitron's orders as ORDER_FILTERING says and turn each into a package (see service.py)."""
