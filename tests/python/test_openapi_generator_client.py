"""A client generated from openapi/tollgate.json by openapi-generator (python) creates a
user and deletes it by the integer id the create returned: path ids are int64 in the
document, so the generated method takes an int."""

import os
import sys

import tollgate_ogen
from tollgate_ogen.api.admin_users_api import AdminUsersApi
from tollgate_ogen.api.users_api import UsersApi
from tollgate_ogen.exceptions import NotFoundException
from tollgate_ogen.models.admin_create_user_form import AdminCreateUserForm


def main():
    config = tollgate_ogen.Configuration(
        host=os.environ["TOLLGATE_URL"],
        username="admin",
        password=os.environ["TOLLGATE_ADMIN_PASSWORD"],
    )
    with tollgate_ogen.ApiClient(config) as client:
        admin = AdminUsersApi(client)
        created = admin.admin_create_user(
            AdminCreateUserForm(password="ogenpass1", login="ogen", email="ogen@example.org")
        )
        assert isinstance(created.id, int), created
        assert UsersApi(client).get_user_by_id(created.id).login == "ogen"
        assert admin.admin_delete_user(created.id).message == "User deleted"
        try:
            UsersApi(client).get_user_by_id(created.id)
            raise AssertionError("the deleted user is still there")
        except NotFoundException:
            pass
    print("openapi-generator client: ok")


if __name__ == "__main__":
    sys.exit(main())
