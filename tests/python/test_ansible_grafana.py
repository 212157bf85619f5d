"""Ansible's community.grafana modules (from the `ansible` package on PyPI) against the running
tollgate binary: tests/python/ansible/grafana.yml with state=present twice, then absent twice.
Each first run must change every task, each second run nothing (idempotence is what these
modules promise, and it holds only when tollgate answers lookups as Grafana does)."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

URL = os.environ["TOLLGATE_URL"]
PASSWORD = os.environ["TOLLGATE_ADMIN_PASSWORD"]
HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, "ansible", "grafana.yml")
BIN = os.path.dirname(sys.executable)


def playbook(state, home, tags=None):
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_HOME=home,
        ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"),
        ANSIBLE_REMOTE_TEMP=os.path.join(home, "remote-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    run = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", PLAYBOOK, "-e", f"state={state}"]
        + (["--tags", tags] if tags else []),
        env=env, capture_output=True, text=True, timeout=300,
    )
    try:
        out = json.loads(run.stdout)
    except ValueError:
        raise AssertionError(f"ansible-playbook printed no JSON (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    stats = out["stats"]["localhost"]
    tasks = {}
    for task in out["plays"][0]["tasks"]:
        result = task["hosts"]["localhost"]
        tasks[task["task"]["name"]] = "skipped" if result.get("skipped") else bool(result.get("changed"))
        assert not result.get("failed"), json.dumps(result, indent=1)
    assert run.returncode == 0 and stats["failures"] == 0 and stats["unreachable"] == 0, (run.stderr, stats)
    return stats, tasks


def get(path, method="GET"):
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(URL + path, headers={"Authorization": "Basic " + token}, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def in_org(org_id, path):
    """GET path as the admin in another org (tollgate ignores X-Grafana-Org-Id), then back."""
    switched = (200, {"message": "Active organization changed"})
    assert get(f"/api/user/using/{org_id}", "POST") == switched
    try:
        return get(path)
    finally:
        assert get("/api/user/using/1", "POST") == switched


TASKS = (
    "Organization",
    "User",
    "The user in the organization",
    "Data source in the main organization",
    "Data source in the new organization, found by name",
)


def changed(present, skipped=()):
    """What each task is expected to report: True (changed), False or "skipped"."""
    return {task: ("skipped" if task in skipped else task in present) for task in TASKS}


def main():
    # The server is fresh (run.sh): the admin is user 1 and the main org 1, so the playbook's
    # org and user are 2.
    with tempfile.TemporaryDirectory() as home:
        stats, tasks = playbook("present", home)
        assert (stats["changed"], tasks) == (5, changed(set(TASKS))), (stats, tasks)
        stats, tasks = playbook("present", home)
        assert (stats["changed"], tasks) == (0, changed(set())), (stats, tasks)

        # grafana_datasource switched the admin into ansible-org (POST /api/user/using/:id,
        # as against Grafana): back to the main org, for these checks.
        assert get("/api/user/using/1", "POST") == (200, {"message": "Active organization changed"})
        status, user = get("/api/users/lookup?loginOrEmail=ansible-user")
        assert status == 200, user
        assert (user["id"], user["login"], user["email"], user["name"], user["isGrafanaAdmin"]) == (
            2, "ansible-user", "ansible@example.org", "Ansible User", True), user
        status, org = get("/api/orgs/name/ansible-org")
        assert (status, org["id"], org["name"]) == (200, 2, "ansible-org"), org
        status, members = get("/api/orgs/2/users")
        # The admin created the org, so it is its Admin (Grafana's CreateOrg).
        assert status == 200, members
        assert {m["login"]: m["role"] for m in members} == {"admin": "Admin", "ansible-user": "Editor"}, members
        status, ds = get("/api/datasources/name/ansible-prometheus")
        assert status == 200, ds
        described = {k: ds[k] for k in ("id", "orgId", "type", "url", "access", "isDefault", "basicAuth",
                                         "basicAuthUser", "secureJsonFields")}
        assert described == {
            "id": 1, "orgId": 1, "type": "prometheus", "url": "http://prometheus.example.org:9090",
            "access": "proxy", "isDefault": True, "basicAuth": True, "basicAuthUser": "scraper",
            "secureJsonFields": {"basicAuthPassword": True},
        }, ds
        assert (ds["jsonData"]["httpMethod"], ds["jsonData"]["timeInterval"]) == ("POST", "30s"), ds
        status, loki = in_org(2, "/api/datasources/name/ansible-loki")
        assert status == 200, loki
        assert (loki["id"], loki["orgId"], loki["uid"], loki["type"], loki["url"]) == (
            2, 2, "ansible-loki", "loki", "http://loki.example.org:3100"), loki

        # The absent run: the member task is skipped (the user is gone by then) and the
        # organization stays (its task has no state: it is removed by the tagged tasks).
        removed = {"User", "Data source in the main organization", "Data source in the new organization, found by name"}
        skipped = {"The user in the organization"}
        stats, tasks = playbook("absent", home)
        assert (stats["changed"], tasks) == (3, changed(removed, skipped)), (stats, tasks)
        stats, tasks = playbook("absent", home)
        assert (stats["changed"], tasks) == (0, changed(set(), skipped)), (stats, tasks)
        assert get("/api/user/using/1", "POST") == (200, {"message": "Active organization changed"})
        status, body = get("/api/users/lookup?loginOrEmail=ansible-user")
        assert (status, body["message"]) == (404, "User not found"), body
        status, body = get("/api/datasources/name/ansible-prometheus")
        assert (status, body["message"]) == (404, "Data source not found"), body
        status, body = in_org(2, "/api/datasources/name/ansible-loki")
        assert (status, body["message"]) == (404, "Data source not found"), body

        # The organization, last (only the tasks tagged remove-org run).
        org_tasks = {"The admin back in the main organization": False, "Organization removed": True}
        stats, tasks = playbook("absent", home, tags="remove-org")
        assert (stats["changed"], tasks) == (1, org_tasks), (stats, tasks)
        stats, tasks = playbook("absent", home, tags="remove-org")
        assert (stats["changed"], tasks) == (0, org_tasks | {"Organization removed": False}), (stats, tasks)
        status, body = get("/api/orgs/name/ansible-org")
        assert (status, body["message"]) == (404, "Organization not found"), body
        status, orgs = get("/api/orgs")
        assert (status, [(o["id"], o["name"]) for o in orgs]) == (200, [(1, "Main Org.")]), orgs
        status, users = get("/api/users")
        assert (status, [u["login"] for u in users]) == (200, ["admin"]), users
    print("ansible community.grafana: ok")


if __name__ == "__main__":
    sys.exit(main())
