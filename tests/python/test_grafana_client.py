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

    service_accounts_and_roles(admin)
    print("grafana-client: ok")


def service_accounts_and_roles(admin):
    """Service accounts, their tokens and custom roles, as grafana-client calls them."""
    sa = admin.serviceaccount.create({"name": "py-automation", "role": "Viewer"})
    assert sa["login"] == "sa-py-automation", sa
    token = admin.serviceaccount.create_token(sa["id"], {"name": "py-token", "secondsToLive": 0})
    assert token["key"].startswith("glsa_"), token
    pages = admin.serviceaccount.search(query="py-")
    assert [a["name"] for a in pages[0]["serviceAccounts"]] == ["py-automation"], pages
    assert admin.serviceaccount.get(sa["id"])["role"] == "Viewer"
    tokens = admin.serviceaccount.get_tokens(sa["id"])
    assert [t["name"] for t in tokens] == ["py-token"], tokens

    role = admin.rbac.create_rbac_role({
        "name": "custom:py:users-reader", "uid": "py-users-reader", "global": True,
        "permissions": [{"action": "users:read", "scope": "global.users:*"}],
    })
    assert role["uid"] == "py-users-reader", role
    names = [r["name"] for r in admin.rbac.get_rbac_roles_all()]
    assert "custom:py:users-reader" in names and "fixed:users:writer" in names, names

    # The token does what its roles grant: nothing admin before, user reads after.
    bot = GrafanaApi(auth=token["key"], host=HOST, port=PORT, protocol="http")
    try:
        bot.users.search_users()
        raise AssertionError("a token without roles must not list users")
    except GrafanaClientError as e:
        assert e.status_code == 403, e
    admin.client.POST(f"/access-control/users/{sa['id']}/roles", json={"roleUid": "py-users-reader"})
    assert any(u["login"] == "admin" for u in bot.users.search_users())

    assert admin.serviceaccount.delete_token(sa["id"], tokens[0]["id"])["message"] == "Service account token deleted"
    try:
        bot.users.search_users()
        raise AssertionError("a revoked token must fail")
    except GrafanaUnauthorizedError:
        pass
    assert admin.serviceaccount.delete(sa["id"])["message"] == "Service account deleted"


if __name__ == "__main__":
    sys.exit(main())
