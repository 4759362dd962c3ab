"""A retried command with the same Idempotency-Key gets the first answer and runs only once."""
import re
import threading
from datetime import timedelta

from sqlalchemy import func, select

from portal.accounts import auth
from portal.api.idempotency import purge_expired, request_fingerprint
from portal.db_types import utcnow
from portal.extensions import db
from portal.idempotency.models import IdempotencyRecord
from portal.otp.models import OtpAttempt
from portal.packages.models import Package, PackageLog
from portal.packages.states import State


def token_headers(user, **extra) -> dict:
    """Authorization header with a new API token of the user, plus extra headers."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}", **extra}


def state_of(package) -> int:
    """The package's state as stored now."""
    return db.session.scalar(select(Package.state).where(Package.id == package.id))


def log_count(package) -> int:
    """How many audit rows the package has."""
    return db.session.scalar(select(func.count()).select_from(PackageLog).where(PackageLog.package_id == package.id))


def test_a_retried_command_runs_once_and_the_retry_gets_the_first_answer(client, make, sms):
    package = make.package(state=State.PACKED)
    headers = token_headers(make.user(role="admin"), **{"Idempotency-Key": "erp-4711"})
    body = {"slug": "ready-for-customer-pickup", "input_parameters": {"package": package.id}}
    url = f"/api/v1/oms/packages/{package.id}/command/"

    first = client.post(url, headers=headers, json=body)
    assert first.status_code == 204
    assert "Idempotent-Replayed" not in first.headers
    retry = client.post(url, headers=headers, json=body)
    assert retry.status_code == 204
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.data == b""

    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert log_count(package) == 1
    assert len(sms.outbox) == 1  # the customer got one code, not two
    record = db.session.scalar(select(IdempotencyRecord))
    assert (record.key, record.status_code, record.response_body) == ("erp-4711", 204, "")


def test_the_same_json_with_other_spacing_and_key_order_is_the_same_request(client, make):
    package = make.package()
    headers = token_headers(make.user(role="admin"), **{"Idempotency-Key": "k1"})
    url = f"/api/v1/oms/packages/{package.id}/command/"
    compact = '{"slug":"complete-packaging-without-shipment","input_parameters":{"package":' + str(package.id) + '}}'
    spaced = ('{ "input_parameters": { "package": ' + str(package.id)
              + ' },\n  "slug": "complete-packaging-without-shipment" }')
    assert client.post(url, headers=headers, data=compact, content_type="application/json").status_code == 204
    retry = client.post(url, headers=headers, data=spaced, content_type="application/json")
    assert retry.status_code == 204
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert log_count(package) == 1


def test_a_wrong_code_is_replayed_without_counting_another_attempt(client, make, sms):
    package = make.package(state=State.PACKED)
    headers = token_headers(make.user(role="admin"))
    url = f"/api/v1/oms/packages/{package.id}/command/"
    assert client.post(url, headers=headers, json={"slug": "ready-for-customer-pickup"}).status_code == 204
    code = re.search(r"is (\d{6})\b", sms.outbox[-1].body).group(1)
    wrong = {"slug": "self-service-package-delivery",
             "input_parameters": {"otp": f"{(int(code) + 1) % 1_000_000:06d}"}}
    keyed = {**headers, "Idempotency-Key": "handover-1"}

    first = client.post(url, headers=keyed, json=wrong)
    retry = client.post(url, headers=keyed, json=wrong)
    assert first.status_code == retry.status_code == 400
    assert retry.json == first.json
    assert retry.json["attempts_left"] == 4
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt)) == 1

    right = client.post(url, headers={**headers, "Idempotency-Key": "handover-2"},
                        json={"slug": "self-service-package-delivery", "input_parameters": {"otp": code}})
    assert right.status_code == 204
    assert state_of(package) == State.DELIVERED


def test_reusing_a_key_for_a_different_request_is_a_422(client, make):
    first_package, second_package = make.package(), make.package()
    headers = token_headers(make.user(role="admin"), **{"Idempotency-Key": "same-key"})
    body = {"slug": "complete-packaging-without-shipment"}
    assert client.post(f"/api/v1/oms/packages/{first_package.id}/command/", headers=headers,
                       json=body).status_code == 204
    other_package = client.post(f"/api/v1/oms/packages/{second_package.id}/command/", headers=headers, json=body)
    assert other_package.status_code == 422
    assert other_package.json["code"] == "idempotency_key_reused"
    other_body = client.post(f"/api/v1/oms/packages/{first_package.id}/command/", headers=headers,
                             json={"slug": "deallocate-package-reservations"})
    assert other_body.status_code == 422
    assert state_of(second_package) == State.WAITING
    assert log_count(first_package) == 1


def test_keys_belong_to_one_user(client, make):
    store = make.store()
    first, second = make.package(store=store), make.package(store=store)
    body = {"slug": "complete-packaging-without-shipment"}
    alice = token_headers(make.user(stores=[store]), **{"Idempotency-Key": "shared"})
    bob = token_headers(make.user(stores=[store]), **{"Idempotency-Key": "shared"})
    assert client.post(f"/api/v1/oms/packages/{first.id}/command/", headers=alice, json=body).status_code == 204
    bobs = client.post(f"/api/v1/oms/packages/{second.id}/command/", headers=bob, json=body)
    assert bobs.status_code == 204
    assert "Idempotent-Replayed" not in bobs.headers
    assert state_of(second) == State.PACKED


def _in_progress(user, package, key: str, body: bytes, age: timedelta) -> None:
    """A record as a request that is still running (or died) would have left it."""
    path = f"/api/v1/oms/packages/{package.id}/command/"
    db.session.add(IdempotencyRecord(user_id=user.id, key=key, request_fingerprint=request_fingerprint(
        "POST", path, body), status_code=None, response_body="", created_at=utcnow() - age))
    db.session.commit()


def test_a_duplicate_of_a_request_still_running_is_a_409(client, make):
    package = make.package()
    user = make.user(role="admin")
    body = b'{"slug": "complete-packaging-without-shipment"}'
    _in_progress(user, package, "running", body, timedelta(seconds=1))
    response = client.post(f"/api/v1/oms/packages/{package.id}/command/", data=body, content_type="application/json",
                           headers=token_headers(user, **{"Idempotency-Key": "running"}))
    assert response.status_code == 409
    assert response.json["code"] == "idempotency_in_progress"
    assert state_of(package) == State.WAITING


def test_a_request_that_died_long_ago_gives_its_key_back(client, make):
    package = make.package()
    user = make.user(role="admin")
    body = b'{"slug": "complete-packaging-without-shipment"}'
    _in_progress(user, package, "crashed", body, timedelta(minutes=10))
    response = client.post(f"/api/v1/oms/packages/{package.id}/command/", data=body, content_type="application/json",
                           headers=token_headers(user, **{"Idempotency-Key": "crashed"}))
    assert response.status_code == 204
    assert state_of(package) == State.PACKED
    assert db.session.scalar(select(IdempotencyRecord.status_code)) == 204


def test_a_key_older_than_a_day_starts_afresh(client, make):
    package = make.package()
    user = make.user(role="admin")
    _in_progress(user, package, "yesterday", b"{}", timedelta(hours=25))
    response = client.post(f"/api/v1/oms/packages/{package.id}/command/",
                           json={"slug": "complete-packaging-without-shipment"},
                           headers=token_headers(user, **{"Idempotency-Key": "yesterday"}))
    assert response.status_code == 204
    assert state_of(package) == State.PACKED
    assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_an_empty_or_overlong_key_is_a_400(client, make):
    package = make.package()
    user = make.user(role="admin")
    for key in ("  ", "k" * 256):
        response = client.post(f"/api/v1/oms/packages/{package.id}/command/",
                               json={"slug": "complete-packaging-without-shipment"},
                               headers=token_headers(user, **{"Idempotency-Key": key}))
        assert response.status_code == 400
        assert response.json["field"] == "Idempotency-Key"
    assert state_of(package) == State.WAITING
    assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_two_racing_copies_of_one_request_run_the_command_once(app, make):
    package = make.package(state=State.PACKED)
    key = auth.create_api_token(db.session, make.user(role="admin"))
    headers = {"Authorization": f"Token {key}", "Idempotency-Key": "race-1"}
    url = f"/api/v1/oms/packages/{package.id}/command/"  # read here: the threads must not touch our session
    barrier = threading.Barrier(2)
    answers = []

    def send():
        """One copy of the request, from its own thread (own app context, own database session)."""
        client = app.test_client()
        barrier.wait()
        response = client.post(url, headers=headers, json={"slug": "ready-for-customer-pickup"})
        answers.append((response.status_code, response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Either the second copy arrived while the first ran (409) or after it finished (replayed 204).
    assert sorted(answers, key=lambda a: (a[0], a[1] or "")) in ([(204, None), (204, "true")], [(204, None), (409, None)])
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert log_count(package) == 1


def test_expired_records_are_purged(app, make):
    package = make.package()
    user = make.user(role="admin")
    _in_progress(user, package, "old", b"{}", timedelta(hours=25))
    _in_progress(user, package, "fresh", b"{}", timedelta(hours=1))
    assert purge_expired(db.session) == 1
    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["fresh"]
