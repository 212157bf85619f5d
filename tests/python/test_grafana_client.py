"""grafana-client (PyPI), a client no one here wrote, against the running tollgate binary.

The server is fresh (run.sh): only the admin (id 1) and the main org. grafana-client raises
on every answer >= 400 (GrafanaBadInputError for 400, GrafanaUnauthorizedError for 401,
GrafanaClientError for other 4xx, GrafanaServerError for 5xx) and returns the decoded body
otherwise; every body is compared here with what Grafana's code answers."""

import os
import sys

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaBadInputError,
    GrafanaClientError,
    GrafanaUnauthorizedError,
)

from expected import FIXED_ROLES, SA_TOKEN

HOST = os.environ["TOLLGATE_HOST"]
PORT = int(os.environ["TOLLGATE_PORT"])
PASSWORD = os.environ["TOLLGATE_ADMIN_PASSWORD"]


def api(user="admin", password=PASSWORD):
    return GrafanaApi(auth=(user, password), host=HOST, port=PORT, protocol="http")


def refused(error, status, message, call, *args):
    """The call fails with grafana-client's `error` class, `status` and Grafana's `message`."""
    try:
        call(*args)
    except GrafanaClientError as e:
        assert type(e) is error, (type(e), e.status_code, e.response)
        assert (e.status_code, e.response["message"]) == (status, message), (e.status_code, e.response)
        return e.response
    raise AssertionError(f"{call.__qualname__}{args} must fail with {status} {message!r}")


def main():
    admin = api()
    # connect() reads buildInfo from /api/frontend/settings; the version matches /api/health's.
    build = admin.connect()
    assert (build["version"], build["edition"]) == (admin.health.client.GET("/health")["version"], "Enterprise"), build
    assert admin.version == build["version"], (admin.version, build)

    created = admin.admin.create_user(
        {"name": "Py User", "email": "py@example.org", "login": "pyuser", "password": "pypass123", "OrgId": 1}
    )
    # The admin is user 1: the first user created is 2.
    assert (created["id"], created["message"]) == (2, "User created"), created
    user_id = created["id"]

    user = admin.users.get_user(user_id)
    assert user["uid"] == created["uid"], (user, created)
    assert (user["id"], user["login"], user["email"], user["name"]) == (2, "pyuser", "py@example.org", "Py User"), user
    assert (user["orgId"], user["isGrafanaAdmin"], user["isDisabled"]) == (1, False, False), user

    found = admin.users.search_users(query="pyuser")
    assert [(u["id"], u["login"], u["email"]) for u in found] == [(2, "pyuser", "py@example.org")], found
    # One user per page: grafana-client walks the pages until an empty one.
    everyone = admin.users.search_users(perpage=1)
    assert [(u["id"], u["login"]) for u in everyone] == [(1, "admin"), (2, "pyuser")], everyone

    by_email = admin.users.find_user("py@example.org")
    assert (by_email["id"], by_email["login"]) == (user_id, "pyuser"), by_email

    changed = admin.admin.change_user_password(user_id, "newpass456")
    assert changed == {"message": "User password updated"}, changed
    assert api("pyuser", "newpass456").user.get_actual_user()["id"] == user_id
    refused(GrafanaUnauthorizedError, 401, "invalid username or password",
            api("pyuser", "pypass123").user.get_actual_user)

    granted = admin.admin.change_user_permissions(user_id, True)
    assert granted == {"message": "User permissions updated"}, granted
    assert admin.users.get_user(user_id)["isGrafanaAdmin"] is True
    revoked = admin.admin.change_user_permissions(user_id, False)
    assert revoked == {"message": "User permissions updated"}, revoked
    assert admin.users.get_user(user_id)["isGrafanaAdmin"] is False

    refused(GrafanaClientError, 412, "User with email '' or username 'pyuser' already exists",
            admin.admin.create_user, {"login": "pyuser", "password": "whatever1"})
    refused(GrafanaBadInputError, 400, "Password is missing or too short",
            admin.admin.create_user, {"login": "short", "password": "abc"})
    assert [u["login"] for u in admin.users.search_users()] == ["admin", "pyuser"]

    assert admin.admin.delete_user(user_id) == {"message": "User deleted"}
    refused(GrafanaClientError, 404, "User not found", admin.users.get_user, user_id)

    settings = admin.admin.settings()
    assert settings["security"]["admin_user"] == "admin", settings["security"]
    assert settings["security"]["admin_password"] == "*********"
    assert settings["server"]["http_port"] == str(PORT)
    stats = admin.admin.stats()
    counts = {k: stats[k] for k in ("users", "admins", "editors", "viewers", "orgs", "datasources")}
    assert counts == {"users": 1, "admins": 1, "editors": 0, "viewers": 0, "orgs": 1, "datasources": 0}, stats

    refused(GrafanaUnauthorizedError, 401, "invalid username or password", api("admin", "wrong").user.get_actual_user)

    service_accounts_and_roles(admin)
    print("grafana-client: ok")


def service_accounts_and_roles(admin):
    """Service accounts, their tokens and custom roles, as grafana-client calls them."""
    sa = admin.serviceaccount.create({"name": "py-automation", "role": "Viewer"})
    sa_id = sa["id"]
    # A service account is a user: the next id after pyuser's (ids are not reused).
    assert (sa_id, sa["name"], sa["login"], sa["role"], sa["orgId"], sa["isDisabled"], sa["tokens"]) == (
        3, "py-automation", "sa-py-automation", "Viewer", 1, False, 0), sa
    token = admin.serviceaccount.create_token(sa_id, {"name": "py-token", "secondsToLive": 0})
    assert token["name"] == "py-token" and SA_TOKEN.fullmatch(token["key"]), token
    pages = admin.serviceaccount.search(query="py-")
    # grafana-client asks for pages until one is empty, and returns them all.
    assert [(p["page"], p["perPage"], p["totalCount"], len(p["serviceAccounts"])) for p in pages] == [
        (1, 1000, 1, 1), (2, 1000, 1, 0)], pages
    assert [(a["id"], a["name"], a["tokens"]) for a in pages[0]["serviceAccounts"]] == [
        (sa_id, "py-automation", 1)], pages
    fetched = admin.serviceaccount.get(sa_id)
    assert (fetched["id"], fetched["name"], fetched["role"], fetched["tokens"]) == (
        sa_id, "py-automation", "Viewer", 1), fetched
    tokens = admin.serviceaccount.get_tokens(sa_id)
    assert [(t["id"], t["name"], t["hasExpired"]) for t in tokens] == [(token["id"], "py-token", False)], tokens

    role = admin.rbac.create_rbac_role({
        "name": "custom:py:users-reader", "uid": "py-users-reader", "global": True,
        "permissions": [{"action": "users:read", "scope": "global.users:*"}],
    })
    assert (role["uid"], role["name"], role["version"], role["global"]) == (
        "py-users-reader", "custom:py:users-reader", 1, True), role
    assert [(p["action"], p["scope"]) for p in role["permissions"]] == [("users:read", "global.users:*")], role
    roles = admin.rbac.get_rbac_roles_all()
    assert [r["name"] for r in roles] == sorted(FIXED_ROLES + ["custom:py:users-reader"]), roles

    # The token does what its roles grant: nothing admin before, user reads after.
    bot = GrafanaApi(auth=token["key"], host=HOST, port=PORT, protocol="http")
    denied = refused(GrafanaClientError, 403,
                     "You'll need additional permissions to perform this action. Permissions needed: users:read",
                     bot.users.search_users)
    assert denied["title"] == "Access denied", denied
    assigned = admin.client.POST(f"/access-control/users/{sa_id}/roles", json={"roleUid": "py-users-reader"})
    assert assigned == {"message": "Role added to the user."}, assigned
    assert [u["login"] for u in bot.users.search_users()] == ["admin"]

    deleted = admin.serviceaccount.delete_token(sa_id, token["id"])
    assert deleted == {"message": "Service account token deleted"}, deleted
    assert admin.serviceaccount.get_tokens(sa_id) == []
    refused(GrafanaUnauthorizedError, 401, "invalid API key", bot.users.search_users)
    assert admin.serviceaccount.delete(sa_id) == {"message": "Service account deleted"}
    refused(GrafanaClientError, 404, "service account not found", admin.serviceaccount.get, sa_id)
    # grafana-client has no call for one role: its raw client (which raises the same way).
    assert admin.client.DELETE("/access-control/roles/py-users-reader") == {"message": "Role deleted"}
    refused(GrafanaClientError, 404, "Role not found", admin.client.GET, "/access-control/roles/py-users-reader")


if __name__ == "__main__":
    sys.exit(main())
