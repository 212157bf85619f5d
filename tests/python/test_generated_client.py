"""A client generated from openapi/tollgate.json by openapi-python-client creates and
deletes a user against the running binary, passing the integer id the create returned
(path ids are documented as int64)."""

import base64
import json
import os
import sys

from tollgate_client import AuthenticatedClient, Client
from tollgate_client.api.admin_users import admin_create_user, admin_delete_user
from tollgate_client.api.users import get_user_by_id
from tollgate_client.models import AdminCreateUserForm

BASE = os.environ["TOLLGATE_URL"]
PASSWORD = os.environ["TOLLGATE_ADMIN_PASSWORD"]


def main():
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    client = AuthenticatedClient(base_url=BASE, token=token, prefix="Basic")
    created = admin_create_user.sync(
        client=client,
        body=AdminCreateUserForm(password="genpass1", login="generated", email="gen@example.org", name="Gen"),
    )
    # The server is fresh (run.sh): the admin is user 1, this one 2.
    assert (created.id, created.message) == (2, "User created"), created
    fetched = get_user_by_id.sync(client=client, id=created.id)
    assert (fetched.id, fetched.login, fetched.email, fetched.name, fetched.is_grafana_admin) == (
        2, "generated", "gen@example.org", "Gen", False), fetched
    deleted = admin_delete_user.sync(client=client, id=created.id)
    assert deleted.message == "User deleted", deleted
    missing = get_user_by_id.sync_detailed(client=client, id=created.id)
    assert (missing.status_code, json.loads(missing.content)["message"]) == (404, "User not found"), missing
    anonymous = get_user_by_id.sync_detailed(client=Client(base_url=BASE), id=1)
    assert (anonymous.status_code, json.loads(anonymous.content)["message"]) == (401, "Unauthorized"), anonymous
    print("generated client: ok")


if __name__ == "__main__":
    sys.exit(main())
