"""The app starts, the login page renders, and staff land on their package list."""


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Log in" in response.data


def test_anonymous_user_is_sent_to_login(client):
    response = client.get("/packages")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_staff_sees_only_own_store_packages(client, make, auth_actions):
    own, other = make.store(), make.store()
    mine = make.package(store=own)
    theirs = make.package(store=other)
    make.user("zeynep", stores=[own])
    assert auth_actions.login("zeynep").status_code == 302
    page = client.get("/packages")
    assert page.status_code == 200
    assert mine.number.encode() in page.data
    assert theirs.number.encode() not in page.data
    assert client.get(f"/packages/{theirs.id}").status_code == 404
