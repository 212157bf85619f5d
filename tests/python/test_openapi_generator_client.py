"""A client generated from openapi/tollgate.json by openapi-generator (the Java generator,
`python` generator; PyPI openapi-generator-cli bundles the jar) creates a user, deletes it by
the id the server returned, and sees it gone, against the running binary."""

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
        assert created.message == "User created" and isinstance(created.id, int), created
        # The id as the server returned it: an integer (Grafana's user ids are int64).
        assert users.get_user_by_id(created.id).login == "ogen"
        deleted = admin.admin_delete_user(created.id)
        assert deleted.message == "User deleted", deleted
        try:
            users.get_user_by_id(created.id)
            raise AssertionError("the deleted user must be gone")
        except NotFoundException as e:
            assert e.status == 404 and '"User not found"' in e.body, e.body

    with ApiClient(Configuration(host=URL)) as anonymous:
        try:
            UsersApi(anonymous).get_user_by_id(1)
            raise AssertionError("an anonymous call must be refused")
        except UnauthorizedException as e:
            assert e.status == 401, e
    print("openapi-generator client: ok")


if __name__ == "__main__":
    sys.exit(main())
