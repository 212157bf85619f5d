"""A client generated from openapi/tollgate.json by openapi-generator (the Java generator,
`python` generator; PyPI openapi-generator-cli bundles the jar) creates a user, deletes it by
the id the server returned, and sees it gone, against the running binary."""

import json
import os
import sys

from tollgate_ogen import AdminUsersApi, ApiClient, Configuration, UsersApi
from tollgate_ogen.exceptions import NotFoundException, UnauthorizedException
from tollgate_ogen.models import AdminCreateUserForm

URL = os.environ["TOLLGATE_URL"]
PASSWORD = os.environ["TOLLGATE_ADMIN_PASSWORD"]


def main():
    config = Configuration(host=URL, username="admin", password=PASSWORD)
    with ApiClient(config) as client:
        admin, users = AdminUsersApi(client), UsersApi(client)
        created = admin.admin_create_user(
            AdminCreateUserForm(login="ogen", email="ogen@example.org", name="Ogen", password="ogenpass1")
        )
        # The server is fresh (run.sh): the admin is user 1, this one 2. The id as the server
        # returned it: an integer (Grafana's user ids are int64).
        assert (created.id, created.message) == (2, "User created"), created
        fetched = users.get_user_by_id(created.id)
        assert (fetched.id, fetched.login, fetched.email, fetched.name) == (2, "ogen", "ogen@example.org", "Ogen"), fetched
        deleted = admin.admin_delete_user(created.id)
        assert deleted.message == "User deleted", deleted
        try:
            users.get_user_by_id(created.id)
            raise AssertionError("the deleted user must be gone")
        except NotFoundException as e:
            assert (e.status, json.loads(e.body)["message"]) == (404, "User not found"), e.body

    with ApiClient(Configuration(host=URL)) as anonymous:
        try:
            UsersApi(anonymous).get_user_by_id(1)
            raise AssertionError("an anonymous call must be refused")
        except UnauthorizedException as e:
            assert (e.status, json.loads(e.body)["message"]) == (401, "Unauthorized"), e.body
    print("openapi-generator client: ok")


if __name__ == "__main__":
    sys.exit(main())
