"""A browser-style flow with Python requests: a user signs in with a Chrome user agent, the
admin sees that session with browser "Chrome" and revokes it, and the cookie stops working.
The server is fresh (run.sh): only the admin (user 1)."""

import os
import sys

import requests

BASE = os.environ["TOLLGATE_URL"]
ADMIN = ("admin", os.environ["TOLLGATE_ADMIN_PASSWORD"])
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def main():
    r = requests.post(f"{BASE}/api/admin/users", auth=ADMIN,
                      json={"login": "browser-user", "password": "browserpw1"})
    assert (r.status_code, r.json()["id"], r.json()["message"]) == (200, 2, "User created"), r.text
    user_id, uid = 2, r.json()["uid"]

    browser = requests.Session()
    browser.headers["User-Agent"] = CHROME
    r = browser.post(f"{BASE}/login", json={"user": "browser-user", "password": "browserpw1"})
    assert (r.status_code, r.json()["message"]) == (200, "Logged in"), r.text
    assert list(browser.cookies.keys()) == ["grafana_session"], browser.cookies
    assert len(browser.cookies["grafana_session"]) == 32, browser.cookies
    me = browser.get(f"{BASE}/api/user").json()
    assert (me["id"], me["uid"], me["login"], me["isGrafanaAdmin"]) == (user_id, uid, "browser-user", False), me

    r = requests.get(f"{BASE}/api/admin/users/{user_id}/auth-tokens", auth=ADMIN)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert len(tokens) == 1, tokens
    token = tokens[0]
    described = {k: token[k] for k in ("id", "isActive", "clientIp", "browser", "browserVersion", "os", "device")}
    assert described == {
        "id": 1, "isActive": False, "clientIp": "127.0.0.1", "browser": "Chrome", "browserVersion": "124.0",
        "os": "Windows", "device": "Other",
    }, token

    r = requests.post(f"{BASE}/api/admin/users/{user_id}/revoke-auth-token", auth=ADMIN,
                      json={"authTokenId": token["id"]})
    assert r.status_code == 200 and r.json()["message"] == "User auth token revoked", r.text

    r = browser.get(f"{BASE}/api/user")
    assert (r.status_code, r.json()["message"]) == (401, "Token revoked"), r.text
    r = requests.get(f"{BASE}/api/admin/users/{user_id}/auth-tokens", auth=ADMIN)
    assert (r.status_code, r.json()) == (200, []), r.text
    print("browser flow: ok")


if __name__ == "__main__":
    sys.exit(main())
