"""grafana-client (PyPI), a client no one here wrote, against the running tollgate binary."""

import os
import sys

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaBadInputError,
    GrafanaClientError,
    GrafanaUnauthorizedError,
)

HOST = os.environ["TOLLGATE_HOST"]
PORT = int(os.environ["TOLLGATE_PORT"])
PASSWORD = os.environ["TOLLGATE_ADMIN_PASSWORD"]


def api(user="admin", password=PASSWORD):
    return GrafanaApi(auth=(user, password), host=HOST, port=PORT, protocol="http")


def main():
    admin = api()
    admin.connect()
    assert admin.version, "version must be readable"

    created = admin.admin.create_user(
        {"name": "Py User", "email": "py@example.org", "login": "pyuser", "password": "pypass123", "OrgId": 1}
    )
    assert created["message"] == "User created", created
    user_id = created["id"]

    user = admin.users.get_user(user_id)
    assert user["login"] == "pyuser" and user["email"] == "py@example.org", user
    assert user["isGrafanaAdmin"] is False

    found = admin.users.search_users(query="pyuser")
    assert [u["login"] for u in found] == ["pyuser"], found
    everyone = admin.users.search_users(perpage=1)
    assert {u["login"] for u in everyone} >= {"admin", "pyuser"}, everyone

    assert admin.users.find_user("py@example.org")["id"] == user_id

    assert admin.admin.change_user_password(user_id, "newpass456")["message"] == "User password updated"
    api("pyuser", "newpass456").user.get_actual_user()
    try:
        api("pyuser", "pypass123").user.get_actual_user()
        raise AssertionError("the old password must be refused")
    except GrafanaUnauthorizedError:
        pass

    assert admin.admin.change_user_permissions(user_id, True)["message"] == "User permissions updated"
    assert admin.users.get_user(user_id)["isGrafanaAdmin"] is True
    admin.admin.change_user_permissions(user_id, False)

    try:
        admin.admin.create_user({"login": "pyuser", "password": "whatever1"})
        raise AssertionError("duplicate must fail")
    except GrafanaClientError as e:
        assert e.status_code == 412, e
    try:
        admin.admin.create_user({"login": "short", "password": "abc"})
        raise AssertionError("short password must fail")
    except GrafanaBadInputError as e:
        assert "too short" in str(e), e

    assert admin.admin.delete_user(user_id)["message"] == "User deleted"
    try:
        admin.users.get_user(user_id)
        raise AssertionError("deleted user must be gone")
    except GrafanaClientError as e:
        assert e.status_code == 404, e

    settings = admin.admin.settings()
    assert settings["security"]["admin_user"] == "admin", settings["security"]
    assert settings["security"]["admin_password"] == "*********"
    assert settings["server"]["http_port"] == str(PORT)
    stats = admin.admin.stats()
    assert stats["users"] >= 1 and stats["admins"] >= 1 and stats["orgs"] == 1, stats

    try:
        api("admin", "wrong").user.get_actual_user()
        raise AssertionError("wrong password must fail")
    except GrafanaUnauthorizedError:
        pass
    print("grafana-client: ok")


if __name__ == "__main__":
    sys.exit(main())
