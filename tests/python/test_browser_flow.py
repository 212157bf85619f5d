"""A browser-style flow with Python requests: a user signs in with a Chrome user agent, the
admin sees that session with browser "Chrome" and revokes it, and the cookie stops working."""

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
    assert r.status_code == 200, r.text
    user_id = r.json()["id"]

    browser = requests.Session()
    browser.headers["User-Agent"] = CHROME
    r = browser.post(f"{BASE}/login", json={"user": "browser-user", "password": "browserpw1"})
    assert r.status_code == 200, r.text
    assert "grafana_session" in browser.cookies, browser.cookies
    assert browser.get(f"{BASE}/api/user").json()["login"] == "browser-user"

    tokens = requests.get(f"{BASE}/api/admin/users/{user_id}/auth-tokens", auth=ADMIN).json()
    assert len(tokens) == 1, tokens
    token = tokens[0]
    assert token["browser"] == "Chrome", token
    assert token["browserVersion"] == "124.0", token
    assert token["os"] == "Windows", token
    assert token["isActive"] is False, token

    r = requests.post(f"{BASE}/api/admin/users/{user_id}/revoke-auth-token", auth=ADMIN,
                      json={"authTokenId": token["id"]})
    assert r.status_code == 200 and r.json()["message"] == "User auth token revoked", r.text

    r = browser.get(f"{BASE}/api/user")
    assert r.status_code == 401, r.text
    assert requests.get(f"{BASE}/api/admin/users/{user_id}/auth-tokens", auth=ADMIN).json() == []
    print("browser flow: ok")


if __name__ == "__main__":
    sys.exit(main())
