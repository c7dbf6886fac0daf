"""Schemathesis hooks for booking (loaded by scripts/schemathesis.sh).

- Every second the tests switch to a fresh, admitted user: a payment ends its payer's turn in
  the waiting room, so one shared token would turn every later call on an active route into
  403 queue_not_active.
- A `user_id` that schemathesis generated as a well-formed UUID (in the query or the body) is
  replaced by the token's own user, so valid requests get past the "must be the token's user"
  rule and reach the rest of the API; malformed ones are left alone (they test the 400).
- Header values are kept ASCII: tiny_http 0.12 closes the connection without an answer on any
  other byte in a header line, before the request reaches booking's code.

The server's URL comes from BOOKING_URL.
"""
import json
import os
import urllib.request
import uuid

import schemathesis

BASE = os.environ["BOOKING_URL"]


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


@schemathesis.auth(refresh_interval=1)
class FreshUser:
    def get(self, case, context):
        req = urllib.request.Request(BASE + "/token", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.load(resp)
        return body["token"], body["user_id"]

    def set(self, case, data, context):
        token, user_id = data
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"
        if isinstance(case.query, dict) and _is_uuid(case.query.get("user_id")):
            case.query["user_id"] = user_id
        if isinstance(case.body, dict) and _is_uuid(case.body.get("user_id")):
            case.body["user_id"] = user_id


@schemathesis.hook
def filter_headers(context, headers):
    return headers is None or all(str(v).isascii() for v in headers.values())
