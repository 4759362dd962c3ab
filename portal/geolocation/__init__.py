"""Geocoding (setup step 9, GEOLOCATION_DISCOVERY): Google Maps and Yandex Maps clients and the key test."""
