"""Each channel against a loopback receiver that checks what the real service would check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from email import message_from_bytes
from email.message import Message as MimeMessage
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from opsdesk.notify.channels import DeliveryError, Message, channel_for, parse_config
from tests.notify.receivers import HttpReceiver, Received, smtp_server

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123"
ACCESS_SECRET = "aliyun-access-key-secret"


def message(**kw: Any) -> Message:
    base = {
        "key": "incident:7:opened:ops-group",
        "subject": "[P1] 新故障 #7",
        "text": "客户A 发生 P1 级故障 #7：web-A down\n查看故障：http://opsdesk.test/incidents/7",
        "link": "http://opsdesk.test/incidents/7",
        "ack_url": "http://opsdesk.test/ack?t=abc",
        "severity": "P1",
        "incident_id": 7,
        "params": {"severity": "P1", "customer": "客户A", "title": "web-A down", "spoken": "运维告警"},
    }
    return Message(**{**base, **kw})


def send(kind: str, config: dict[str, Any], msg: Message, to: list[str] | None = None) -> str:
    channel = channel_for(kind)
    parsed = parse_config(kind, config)

    async def go() -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            return await channel.send(parsed, msg, to if to is not None else channel.recipients(parsed), http)

    return asyncio.run(go())


# -- email -----------------------------------------------------------------------------------


def mail_text(raw: bytes) -> tuple[MimeMessage, str]:
    mail = message_from_bytes(raw)
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return mail, payload.decode(mail.get_content_charset() or "utf-8")


def test_email_reaches_a_real_smtp_server_in_both_languages() -> None:
    from opsdesk.notify.templates import Notice, render

    controller, box = smtp_server()
    try:
        notice = Notice(
            event="opened", title="web-A unreachable", customer="客户A", severity="P1", incident_id=7
        )
        link = "http://opsdesk.test/incidents/7"
        config = {
            "host": "127.0.0.1",
            "port": controller.port,
            "security": "none",
            "sender": "noc@opsdesk.test",
            "to": ["duty@example.cn", "ops@example.com"],
        }
        for lang in ("both", "en"):
            r = render(notice, lang, link=link, ack_url="http://opsdesk.test/ack?t=x")
            send("email", config, message(key=f"k-{lang}", subject=r.subject, text=r.text))
    finally:
        controller.stop()
    assert len(box.messages) == 2
    both, english = box.messages
    assert both.rcpt_tos == ["duty@example.cn", "ops@example.com"]
    mail, text = mail_text(both.original_content or b"")
    assert "客户A 发生 P1 级故障 #7：web-A unreachable" in text
    assert "A P1 incident #7 was opened for 客户A: web-A unreachable" in text
    assert text.count("http://opsdesk.test/incidents/7") == 2  # once per language
    assert "确认接手" in text and "Acknowledge and take it" in text
    assert mail["Idempotency-Key"] == "k-both" and mail["Message-ID"].endswith("@opsdesk>")
    subject = str(mail["Subject"])
    assert "新故障" in decode_header_text(subject) and "New incident" in decode_header_text(subject)
    _, en_text = mail_text(english.original_content or b"")
    assert "A P1 incident #7 was opened" in en_text and "发生" not in en_text


def decode_header_text(value: str) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(value)))


def test_email_server_refusal_is_reported() -> None:
    with pytest.raises(DeliveryError) as err:
        send(
            "email",
            {"host": "127.0.0.1", "port": 9, "security": "none", "sender": "a@b.cn", "to": ["c@d.cn"]},
            message(),
        )
    assert err.value.retry and "SMTP" in str(err.value)


# -- webhook ---------------------------------------------------------------------------------


def test_webhook_is_signed_over_the_body_with_timestamp_and_key() -> None:
    secret = "webhook-hmac-key-0123456789"
    with HttpReceiver() as rx:
        send("webhook", {"url": f"{rx.url}/hook", "secret": secret}, message())
    (req,) = rx.requests
    expected = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-opsdesk-signature"] == expected
    forged = "sha256=" + hmac.new(b"another-key", req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-opsdesk-signature"] != forged
    body = json.loads(req.body)
    assert abs(int(req.headers["x-opsdesk-timestamp"]) - time.time()) < 10
    assert body["timestamp"] == int(req.headers["x-opsdesk-timestamp"])
    assert req.headers["idempotency-key"] == body["idempotency_key"] == "incident:7:opened:ops-group"
    assert body["link"] == "http://opsdesk.test/incidents/7" and body["incident_id"] == 7


@pytest.mark.parametrize(
    ("status", "retry"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_webhook_errors_say_whether_to_retry(status: int, retry: bool) -> None:
    with HttpReceiver(respond=lambda r: (status, "{}")) as rx, pytest.raises(DeliveryError) as err:
        send("webhook", {"url": rx.url, "secret": "webhook-hmac-key-0123456789"}, message())
    assert err.value.retry is retry and f"HTTP {status}" in str(err.value)


# -- IM bots ---------------------------------------------------------------------------------


def test_wecom_posts_a_text_with_key_and_mentions() -> None:
    with HttpReceiver(respond=lambda r: (200, '{"errcode":0,"errmsg":"ok"}')) as rx:
        send(
            "wecom",
            {
                "base_url": f"{rx.url}/cgi-bin/webhook/send",
                "key": "wecom-key-123",
                "mention_mobiles": ["13800000000"],
            },
            message(),
        )
    (req,) = rx.requests
    assert req.path == "/cgi-bin/webhook/send" and req.query == {"key": "wecom-key-123"}
    body = json.loads(req.body)
    assert body["msgtype"] == "text"
    assert body["text"]["content"] == message().text
    assert body["text"]["mentioned_mobile_list"] == ["13800000000"]


def test_wecom_rate_limit_is_retried_other_codes_are_not() -> None:
    answers = iter(
        ['{"errcode":45009,"errmsg":"api freq out of limit"}', '{"errcode":93000,"errmsg":"invalid"}']
    )
    with HttpReceiver(respond=lambda r: (200, next(answers))) as rx:
        config = {"base_url": rx.url, "key": "wecom-key-123"}
        with pytest.raises(DeliveryError) as busy:
            send("wecom", config, message())
        with pytest.raises(DeliveryError) as bad:
            send("wecom", config, message())
    assert busy.value.retry and not bad.value.retry and "93000" in str(bad.value)


def dingtalk_check(req: Received, secret: str) -> tuple[int, str]:
    """What DingTalk does: recompute the signature from timestamp and secret; reject old ones."""
    ts = req.query["timestamp"]
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    if req.query["sign"] != base64.b64encode(mac).decode() or abs(int(ts) / 1000 - time.time()) > 3600:
        return 200, '{"errcode":310000,"errmsg":"sign not match"}'
    return 200, '{"errcode":0,"errmsg":"ok"}'


def test_dingtalk_signature_matches_the_documented_algorithm() -> None:
    secret = "SEC0123456789abcdef+/="
    with HttpReceiver(respond=lambda r: dingtalk_check(r, secret)) as rx:
        send(
            "dingtalk",
            {
                "base_url": f"{rx.url}/robot/send",
                "access_token": "dt-token-1",
                "secret": secret,
                "at_mobiles": ["13800000000"],
            },
            message(),
        )
        with pytest.raises(DeliveryError) as err:  # the receiver really checks
            send(
                "dingtalk",
                {"base_url": rx.url, "access_token": "dt-token-1", "secret": "SECwrong-secret"},
                message(),
            )
    req = rx.requests[0]
    assert req.query["access_token"] == "dt-token-1"
    assert req.path == "/robot/send"
    body = json.loads(req.body)
    assert body["text"]["content"] == message().text and body["at"]["atMobiles"] == ["13800000000"]
    assert not err.value.retry and "310000" in str(err.value)


def test_dingtalk_sign_is_url_encoded_on_the_wire() -> None:
    from opsdesk.notify.channels.dingtalk import signature

    secret = "SEC-secret-for-encoding"
    seen: list[str] = []

    def capture(req: Received) -> tuple[int, str]:
        return 200, '{"errcode":0}'

    with HttpReceiver(respond=capture) as rx:
        orig = rx.server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

        def spy(handler: Any) -> None:
            seen.append(handler.path)
            orig(handler)

        rx.server.RequestHandlerClass.do_POST = spy  # type: ignore[attr-defined]
        send("dingtalk", {"base_url": rx.url, "access_token": "dt-token-1", "secret": secret}, message())
    query = seen[0].split("?", 1)[1]
    ts = rx.requests[0].query["timestamp"]
    assert f"sign={quote(signature(secret, int(ts)), safe='')}" in query


def feishu_check(req: Received, secret: str) -> tuple[int, str]:
    body = json.loads(req.body)
    key = f"{body['timestamp']}\n{secret}".encode()
    if body["sign"] != base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode():
        return (
            200,
            '{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}',
        )
    return 200, '{"code":0,"msg":"success"}'


def test_feishu_signature_matches_the_documented_algorithm() -> None:
    secret = "feishu-sign-secret"
    with HttpReceiver(respond=lambda r: feishu_check(r, secret)) as rx:
        send(
            "feishu",
            {"base_url": f"{rx.url}/open-apis/bot/v2/hook", "hook_token": "hook-uuid-1", "secret": secret},
            message(),
        )
        with pytest.raises(DeliveryError) as err:
            send(
                "feishu",
                {"base_url": rx.url, "hook_token": "hook-uuid-1", "secret": "not-the-secret"},
                message(),
            )
    req = rx.requests[0]
    assert req.path == "/open-apis/bot/v2/hook/hook-uuid-1"
    body = json.loads(req.body)
    assert body["msg_type"] == "text" and body["content"]["text"] == message().text
    assert abs(int(body["timestamp"]) - time.time()) < 10
    assert "19021" in str(err.value) and not err.value.retry


# -- Alibaba Cloud ---------------------------------------------------------------------------


def rfc3986(value: str) -> str:
    return quote(value, safe="-_.~")


def aliyun_check(req: Received, secret: str) -> tuple[int, str]:
    """Recompute the RPC signature v1 as Alibaba Cloud documents it, and answer like the API."""
    params = req.form()
    given = params.pop("Signature")
    canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()))
    to_sign = "POST&%2F&" + rfc3986(canonical)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    if given != base64.b64encode(mac).decode():
        return 400, '{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched"}'
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        return 400, '{"Code":"InvalidParameter","Message":"signature method"}'
    if params["Action"] == "SendSms":
        return 200, '{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"r1"}'
    return 200, '{"Code":"OK","Message":"OK","CallId":"116012354148^10281378","RequestId":"r2"}'


ALIYUN = {"access_key_id": "LTAI5tTestKeyId", "access_key_secret": ACCESS_SECRET}


def test_aliyun_sms_sendsms_signed_with_template() -> None:
    with HttpReceiver(respond=lambda r: aliyun_check(r, ACCESS_SECRET)) as rx:
        cfg = {
            **ALIYUN,
            "endpoint": f"{rx.url}/",
            "sign_name": "运维中心",
            "template_code": "SMS_154950909",
            "to": ["13800000000", "+85291234567"],
        }
        biz = send("aliyun_sms", cfg, message())
        with pytest.raises(DeliveryError) as err:
            send("aliyun_sms", {**cfg, "access_key_secret": "a-different-secret"}, message())
    assert biz == "900619746936498440^0"
    form = rx.requests[0].form()
    assert form["Action"] == "SendSms" and form["Version"] == "2017-05-25"
    assert form["PhoneNumbers"] == "13800000000,+85291234567"
    assert form["SignName"] == "运维中心" and form["TemplateCode"] == "SMS_154950909"
    assert json.loads(form["TemplateParam"]) == {"severity": "P1", "customer": "客户A", "title": "web-A down"}
    assert form["OutId"] == "incident:7:opened:ops-group"
    assert "SignatureDoesNotMatch" in str(err.value) and not err.value.retry


def test_aliyun_voice_single_call_by_tts() -> None:
    with HttpReceiver(respond=lambda r: aliyun_check(r, ACCESS_SECRET)) as rx:
        cfg = {
            **ALIYUN,
            "endpoint": f"{rx.url}/",
            "tts_code": "TTS_10001",
            "called_show_number": "057188773344",
            "tts_params": ["customer", "title"],
        }
        call_id = send("aliyun_voice", cfg, message(), to=["139 0000-0000"])  # as in a contact list
    assert call_id == "116012354148^10281378"
    form = rx.requests[0].form()
    assert form["Action"] == "SingleCallByTts" and form["CalledNumber"] == "13900000000"
    assert form["TtsCode"] == "TTS_10001" and form["CalledShowNumber"] == "057188773344"
    assert json.loads(form["TtsParam"]) == {"customer": "客户A", "title": "web-A down"}


def test_aliyun_throttling_is_retried() -> None:
    answer = '{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1"}'
    with HttpReceiver(respond=lambda r: (200, answer)) as rx:
        cfg = {
            **ALIYUN,
            "endpoint": rx.url,
            "sign_name": "运维中心",
            "template_code": "SMS_1",
            "to": ["13800000000"],
        }
        with pytest.raises(DeliveryError) as err:
            send("aliyun_sms", cfg, message())
    assert err.value.retry and "BUSINESS_LIMIT_CONTROL" in str(err.value)


# -- Twilio ----------------------------------------------------------------------------------


def twilio_check(req: Received) -> tuple[int, str]:
    expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    if req.headers.get("authorization") != expected:
        return 401, '{"code":20003,"message":"Authenticate","status":401}'
    kind = "SM" if req.path.endswith("/Messages.json") else "CA"
    return 201, json.dumps({"sid": kind + "0" * 32, "status": "queued"})


def test_twilio_sms_and_voice_with_basic_auth() -> None:
    with HttpReceiver(respond=twilio_check) as rx:
        cfg = {"base_url": rx.url, "account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006"}
        sms = send("twilio", cfg, message(), to=["+447700900123"])
        call = send(
            "twilio",
            {**cfg, "mode": "voice"},
            message(params={"spoken": "P1 incident & <down>"}),
            to=["+447700900123"],
        )
        with pytest.raises(DeliveryError) as err:
            send("twilio", {**cfg, "auth_token": "wrong-token-0123456"}, message(), to=["+447700900123"])
    assert sms.startswith("SM") and call.startswith("CA")
    text, voice = rx.requests[0], rx.requests[1]
    assert text.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert text.form() == {"Body": message().text, "To": "+447700900123", "From": "+15005550006"}
    assert voice.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert '<Say language="en-US">P1 incident &amp; &lt;down&gt;</Say>' in voice.form()["Twiml"]
    assert "HTTP 401" in str(err.value) and not err.value.retry
