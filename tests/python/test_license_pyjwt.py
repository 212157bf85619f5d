"""License tokens across implementations: a token signed by PyJWT (EdDSA, with the issuer key
`tollgate license keygen` wrote) is accepted by the server, and a token from `tollgate license
issue` verifies with PyJWT."""

import os
import subprocess
import time

import jwt
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key

URL = os.environ["TOLLGATE_URL"]
ROOT = URL + "/"
AUTH = ("admin", os.environ["TOLLGATE_ADMIN_PASSWORD"])
KEY_PATH = os.environ["TOLLGATE_ISSUER_KEY"]
KID = os.environ["TOLLGATE_ISSUER_KID"]
BIN = os.environ["TOLLGATE_BIN"]
# tollgate's own reasons (Grafana Enterprise's verifier is closed source; these are
# src/crypto/jws.rs's texts).
UNKNOWN_KEY = "token signed by unknown key 'someone-else'"
HS256 = "unsupported signing algorithm 'HS256' (only EdDSA is accepted)"


def check():
    r = requests.get(URL + "/api/licensing/check", auth=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def main():
    private = load_pem_private_key(open(KEY_PATH, "rb").read(), password=None)
    now = int(time.time())
    claims = {
        "jti": "py-1", "iss": "pyjwt", "sub": ROOT, "iat": now, "nbf": now - 60,
        "exp": now + 86400, "lexp": now + 30 * 86400, "lid": "py", "included_users": 10,
        "lic_exp_warn_days": 30, "tok_exp_warn_days": 2, "update_days": 1,
        "prod": ["grafana-enterprise"], "company": "PyJWT Inc", "slug": "pyjwt",
    }
    token = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": KID})
    assert check() is False
    r = requests.post(URL + "/api/licensing/token", json={"token": token}, auth=AUTH)
    assert r.status_code == 200, r.text
    stored = r.json()
    # The claims as signed, and the status Grafana derives (1: valid).
    assert {k: stored[k] for k in claims} == claims, stored
    assert stored["status"] == 1, stored
    assert check() is True
    r = requests.get(URL + "/api/licensing/token", auth=AUTH)
    assert (r.status_code, r.json()["jti"], r.json()["lid"]) == (200, "py-1", "py"), r.text

    # PyJWT with an unknown kid, and HS256 (a symmetric algorithm): refused with the reason.
    other = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "someone-else"})
    r = requests.post(URL + "/api/licensing/token", json={"token": other}, auth=AUTH)
    assert (r.status_code, r.json()["message"]) == (400, UNKNOWN_KEY), r.text
    hs = jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": KID})
    r = requests.post(URL + "/api/licensing/token", json={"token": hs}, auth=AUTH)
    assert (r.status_code, r.json()["message"]) == (400, HS256), r.text
    # The refused tokens left the stored one alone.
    assert requests.get(URL + "/api/licensing/token", auth=AUTH).json()["jti"] == "py-1"

    # The other way: tollgate's issuer output verifies with PyJWT and the public key.
    issued = subprocess.check_output(
        [BIN, "license", "issue", "--key", KEY_PATH, "--sub", ROOT, "--company", "Py",
         "--license-days", "30", "--token-days", "7", "--lid", "from-tollgate"],
        text=True,
    ).strip()
    assert jwt.get_unverified_header(issued) == {"alg": "EdDSA", "typ": "JWT", "kid": KID}
    decoded = jwt.decode(issued, private.public_key(), algorithms=["EdDSA"])
    assert (decoded["lid"], decoded["sub"], decoded["company"]) == ("from-tollgate", ROOT, "Py"), decoded
    assert decoded["lexp"] - decoded["iat"] == 30 * 86400 and decoded["exp"] - decoded["iat"] == 7 * 86400, decoded

    r = requests.delete(URL + "/api/licensing/token", json={"instance": ROOT}, auth=AUTH)
    assert r.status_code == 202 and r.json() == {}, r.text
    assert check() is False
    print("license tokens interoperate with PyJWT: ok")


if __name__ == "__main__":
    main()
