"""The Standard Webhooks signature check, against the specification's known answer and each
way a delivery can fail it."""

import base64

import pytest

from offboard.inbound.signatures import (
    SignatureRefused,
    new_secret,
    secret_key,
    signature,
    verify,
)

pytestmark = pytest.mark.offline

# The reference libraries' test vector (standard-webhooks/standard-webhooks, libraries/*).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _verify(**changes: object) -> object:
    args: dict[str, object] = {
        "endpoint_secrets": [SECRET],
        "msg_id": MSG_ID,
        "timestamp": str(TIMESTAMP),
        "signatures": EXPECTED,
        "body": BODY,
        "now": TIMESTAMP + 10,
    }
    args.update(changes)
    return verify(**args)  # type: ignore[arg-type]


def test_the_known_answer_is_signed_and_verified():
    assert signature(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    delivery = _verify()
    assert (delivery.id, delivery.timestamp) == (MSG_ID, TIMESTAMP)


def test_any_one_of_several_signatures_and_any_one_of_several_secrets_will_do():
    other = new_secret()
    assert _verify(signatures=f"v1,AAAA v1a,ed25519sig {EXPECTED}").id == MSG_ID
    assert _verify(endpoint_secrets=[other, SECRET]).id == MSG_ID


@pytest.mark.parametrize(
    ("changes", "header", "problem"),
    [
        ({"body": BODY + b" "}, "webhook-signature", "no signature matches"),
        ({"msg_id": MSG_ID + "x"}, "webhook-signature", "no signature matches"),
        ({"endpoint_secrets": [new_secret()]}, "webhook-signature", "no signature matches"),
        ({"endpoint_secrets": []}, "webhook-signature", "no signature matches"),
        ({"signatures": EXPECTED.replace("v1,", "v2,")}, "webhook-signature", "v1,<base64>"),
        ({"signatures": None}, "webhook-signature", "is missing"),
        ({"now": TIMESTAMP + 301}, "webhook-timestamp", "301 seconds"),
        ({"now": TIMESTAMP - 301}, "webhook-timestamp", "301 seconds"),
        ({"timestamp": "1614265330.5"}, "webhook-timestamp", "whole seconds"),
        ({"timestamp": ""}, "webhook-timestamp", "is missing"),
        ({"msg_id": None}, "webhook-id", "is missing"),
        ({"msg_id": "a b"}, "webhook-id", "visible ASCII"),
        ({"msg_id": "x" * 256}, "webhook-id", "1 to 255"),
    ],
)
def test_each_failure_names_its_header(changes, header, problem):
    with pytest.raises(SignatureRefused) as refused:
        _verify(**changes)

    assert refused.value.header == header
    assert problem in refused.value.problem


def test_the_tolerance_is_five_minutes_either_side():
    assert _verify(now=TIMESTAMP + 300).timestamp == TIMESTAMP
    assert _verify(now=TIMESTAMP - 300).timestamp == TIMESTAMP


def test_a_new_secret_is_32_random_bytes_in_the_whsec_form():
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) == 32
    assert secret != new_secret()
    assert base64.b64encode(secret_key(secret)).decode() == secret.removeprefix("whsec_")
