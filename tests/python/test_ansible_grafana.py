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


def playbook(state, home):
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
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", PLAYBOOK, "-e", f"state={state}"],
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
    assert get(f"/api/user/using/{org_id}", "POST")[0] == 200
    try:
        return get(path)
    finally:
        assert get("/api/user/using/1", "POST")[0] == 200


def main():
    with tempfile.TemporaryDirectory() as home:
        stats, tasks = playbook("present", home)
        assert stats["changed"] == 5 and all(tasks.values()), (stats, tasks)
        stats, tasks = playbook("present", home)
        assert stats["changed"] == 0, (stats, tasks)

        # grafana_datasource switched the admin into ansible-org (POST /api/user/using/:id,
        # as against Grafana): back to the main org, for these checks and the tests after.
        assert get("/api/user/using/1", "POST")[0] == 200
        status, user = get("/api/users/lookup?loginOrEmail=ansible-user")
        assert status == 200 and user["isGrafanaAdmin"] is True and user["name"] == "Ansible User", user
        status, org = get("/api/orgs/name/ansible-org")
        assert status == 200, org
        status, members = get(f"/api/orgs/{org['id']}/users")
        assert {m["login"]: m["role"] for m in members}.get("ansible-user") == "Editor", members
        status, ds = get("/api/datasources/name/ansible-prometheus")
        assert ds["isDefault"] and ds["basicAuthUser"] == "scraper" and ds["jsonData"]["httpMethod"] == "POST", ds
        assert ds["secureJsonFields"] == {"basicAuthPassword": True}, ds
        status, loki = in_org(org["id"], "/api/datasources/name/ansible-loki")
        assert status == 200 and loki["orgId"] == org["id"] and loki["uid"] == "ansible-loki", loki

        stats, tasks = playbook("absent", home)
        assert stats["changed"] == 3, (stats, tasks)
        stats, tasks = playbook("absent", home)
        assert stats["changed"] == 0, (stats, tasks)
        assert get("/api/user/using/1", "POST")[0] == 200
        assert get("/api/users/lookup?loginOrEmail=ansible-user")[0] == 404
        assert get("/api/datasources/name/ansible-prometheus")[0] == 404
        assert in_org(org["id"], "/api/datasources/name/ansible-loki")[0] == 404
    print("ansible community.grafana: ok")


if __name__ == "__main__":
    sys.exit(main())
