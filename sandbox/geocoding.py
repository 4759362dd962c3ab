"""A geocoding stand-in inside the sandbox, so setup step 9 can pass offline.

It answers the two calls the portal's geocoders make (portal/geolocation/client.py), in each provider's own
shape: Google's GET /maps/api/geocode/json?address=&key= and Yandex's GET /1.x/?apikey=&geocode=&format=json.
Point GEOCODING_GOOGLE_BASE_URL or GEOCODING_YANDEX_BASE_URL at the sandbox (scripts/run-demo does).

Any API key works except SANDBOX_GEOCODING_REFUSED_KEY ("wrong-key"), which is refused so the error can be
seen. An address naming a township or province of the sandbox's stores is placed there (the township's
stores' mean position); one mentioning "nowhere" finds nothing; any other gets a steady made-up point in Turkey.
"""
from __future__ import annotations

import unicodedata
import zlib

from flask import Flask, current_app, jsonify, request

from sandbox.places import PROVINCES, STOCK_LOCATIONS

NOWHERE = "nowhere"
# Turkey's rough bounding box, for addresses the sandbox does not know.
LAT_RANGE, LON_RANGE = (36.9, 41.2), (27.0, 43.5)


def _plain(text: str) -> str:
    """Lower case without accents, dotless i as i: "İstanbul" and "istanbul" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ı", "i").casefold()


def _mean(points: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean of some points."""
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _gazetteer() -> list[tuple[str, str, tuple[float, float]]]:
    """(plain name, display name, position) of every township, then every province, with a store; longest first."""
    provinces = {plate: name for plate, name, _townships in PROVINCES}
    townships: dict[tuple[str, str], list[tuple[float, float]]] = {}
    cities: dict[str, list[tuple[float, float]]] = {}
    for _code, _name, plate, township, lat, lon, _kind in STOCK_LOCATIONS:
        province = provinces[plate]
        townships.setdefault((township, province), []).append((lat, lon))
        cities.setdefault(province, []).append((lat, lon))
    # A township is more precise than its province: "Kadıköy, İstanbul" is placed in Kadıköy.
    places = sorted([(_plain(t), f"{t}, {p}, Türkiye", _mean(points)) for (t, p), points in townships.items()],
                    key=lambda place: -len(place[0]))
    return places + sorted([(_plain(p), f"{p}, Türkiye", _mean(points)) for p, points in cities.items()],
                           key=lambda place: -len(place[0]))


GAZETTEER = _gazetteer()


def locate(address: str) -> tuple[float, float, str] | None:
    """Where the stand-in puts an address: (lat, lng, label), or None when it finds nothing."""
    plain = _plain(address)
    if not plain.strip() or NOWHERE in plain:
        return None
    for name, label, (lat, lng) in GAZETTEER:
        if name in plain:
            return round(lat, 6), round(lng, 6), label
    seed = zlib.crc32(plain.encode())
    lat = LAT_RANGE[0] + (seed % 10_000) / 10_000 * (LAT_RANGE[1] - LAT_RANGE[0])
    lng = LON_RANGE[0] + (seed // 10_000 % 10_000) / 10_000 * (LON_RANGE[1] - LON_RANGE[0])
    return round(lat, 6), round(lng, 6), "Türkiye"


def register_geocoding(app: Flask) -> None:
    """The Google and Yandex geocoding routes."""
    app.config.setdefault("SANDBOX_GEOCODING_REFUSED_KEY", "wrong-key")

    def refused(key: str) -> bool:
        """True for a missing key or the one the sandbox refuses on purpose."""
        return not key.strip() or key == current_app.config["SANDBOX_GEOCODING_REFUSED_KEY"]

    @app.get("/maps/api/geocode/json")
    def google_geocode():
        """Google's Geocoding API: errors come back as HTTP 200 with a status, as Google sends them."""
        if refused(request.args.get("key", "")):
            return jsonify({"status": "REQUEST_DENIED", "results": [],
                            "error_message": "The provided API key is invalid (sandbox)."})
        address = request.args.get("address", "")
        if not address.strip():
            return jsonify({"status": "INVALID_REQUEST", "results": []})
        found = locate(address)
        if found is None:
            return jsonify({"status": "ZERO_RESULTS", "results": []})
        lat, lng, label = found
        return jsonify({"status": "OK", "results": [{
            "formatted_address": label, "geometry": {"location": {"lat": lat, "lng": lng},
                                                     "location_type": "APPROXIMATE"},
            "place_id": f"sandbox-{zlib.crc32(label.encode())}", "types": ["locality"]}]})

    @app.get("/1.x/")
    def yandex_geocode():
        """Yandex's Geocoder API: 403 for a refused key, a GeoObjectCollection with "lon lat" positions."""
        if refused(request.args.get("apikey", "")):
            response = jsonify({"statusCode": 403, "error": "Forbidden", "message": "Invalid api key (sandbox)"})
            response.status_code = 403
            return response
        address = request.args.get("geocode", "")
        if not address.strip():
            response = jsonify({"statusCode": 400, "error": "Bad Request", "message": "Missing geocode parameter"})
            response.status_code = 400
            return response
        found = locate(address)
        members = []
        if found is not None:
            lat, lng, label = found
            members.append({"GeoObject": {"name": label.split(",")[0], "Point": {"pos": f"{lng} {lat}"},
                                          "metaDataProperty": {"GeocoderMetaData": {"text": label}}}})
        return jsonify({"response": {"GeoObjectCollection": {
            "metaDataProperty": {"GeocoderResponseMetaData": {"request": address, "found": str(len(members))}},
            "featureMember": members}}})
