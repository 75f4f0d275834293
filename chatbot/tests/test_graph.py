"""chatbot/graph.py end to end, over real HTTP, against the fake Graph API (fake_graph.py)."""

import hashlib
import socket

import pytest

from chatbot.whatsapp import graph
from chatbot.whatsapp.graph import GraphError

PNID = "106540352242922"
WABA = "102290129340398"
TEXT = {"to": "+16505551234", "type": "text", "text": {"body": "Olá! Como posso ajudar?"}}
IMAGE = bytes(range(256)) * 64  # every byte value, CR and LF included, to catch any rewriting


def send_error(fake, **failure):
    fake.fail_next(**failure)
    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)
    return caught.value


# --- Sending (cloud-api.md §7) ---


def test_send_posts_the_body_meta_expects(fake_graph):
    graph.send_message(PNID, TEXT)

    assert fake_graph.sent() == [{
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"body": "Olá! Como posso ajudar?"},
    }]
    assert fake_graph.requests[-1].path == f"/v25.0/{PNID}/messages"


def test_send_carries_the_bearer_token(fake_graph):
    graph.send_message(PNID, TEXT)

    assert fake_graph.requests[-1].headers["Authorization"] == "Bearer test-token"


def test_send_returns_the_wamid_and_resolved_wa_id(fake_graph):
    wamid, wa_id = graph.send_message(PNID, TEXT)

    assert wamid == fake_graph.wamids[-1]
    assert wamid.startswith("wamid.")
    assert wa_id == "16505551234"


def test_send_returns_the_wa_id_without_brazils_ninth_digit(fake_graph):
    fake_graph.wa_ids = {"5511987654321": "551187654321"}

    _, wa_id = graph.send_message(PNID, {**TEXT, "to": "+5511987654321"})

    assert wa_id == "551187654321"


def test_each_send_gets_its_own_wamid(fake_graph):
    first, _ = graph.send_message(PNID, TEXT)
    second, _ = graph.send_message(PNID, TEXT)

    assert first != second


def test_send_without_recipient_is_refused_for_good(fake_graph):
    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, {"type": "text", "text": {"body": "hi"}})

    assert (caught.value.code, caught.value.http_status, caught.value.retry) == (100, 400, False)


def test_mark_read_posts_the_read_status(fake_graph):
    graph.mark_read(PNID, "wamid.IN1")

    assert fake_graph.requests[-1].json == {"messaging_product": "whatsapp", "status": "read",
                                            "message_id": "wamid.IN1"}
    assert fake_graph.sent() == []


def test_mark_read_can_show_typing(fake_graph):
    graph.mark_read(PNID, "wamid.IN1", typing=True)

    assert fake_graph.requests[-1].json == {"messaging_product": "whatsapp", "status": "read",
                                            "message_id": "wamid.IN1", "typing_indicator": {"type": "text"}}


# --- Errors (cloud-api.md §12) ---


@pytest.mark.parametrize(("code", "http_status"), [
    (1, 400), (2, 503), (4, 400), (80007, 400), (130429, 400), (131000, 500), (131016, 500), (131056, 400),
    (131057, 500), (133004, 503),
])
def test_transient_errors_can_be_retried(fake_graph, code, http_status):
    error = send_error(fake_graph, code=code, http_status=http_status, details=f"details of {code}")

    assert (error.code, error.http_status, error.details) == (code, http_status, f"details of {code}")
    assert error.retry is True
    assert error.sent_unknown is False
    assert error.explanation == graph.explain(code) != ""


@pytest.mark.parametrize(("code", "http_status"), [
    (0, 401), (190, 401), (100, 400), (131026, 400), (131047, 400), (131049, 400), (131050, 400), (132000, 400),
    (132001, 404),
])
def test_permanent_errors_are_not_retried(fake_graph, code, http_status):
    error = send_error(fake_graph, code=code, http_status=http_status, details=f"details of {code}")

    assert (error.code, error.http_status, error.details) == (code, http_status, f"details of {code}")
    assert error.retry is False
    assert error.token_invalid is (code in (0, 190))
    assert error.explanation == graph.explain(code) != ""


def test_retry_follows_the_code_not_the_http_status(fake_graph):
    error = send_error(fake_graph, code=131026, http_status=500)

    assert error.retry is False


def test_an_expired_token_is_a_token_error(fake_graph, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "expired"

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)

    assert (caught.value.code, caught.value.http_status) == (190, 401)
    assert caught.value.token_invalid and not caught.value.retry


def test_a_non_json_bad_gateway_can_be_retried(fake_graph):
    error = send_error(fake_graph, raw_status=502, body=b"<html>Bad gateway</html>")

    assert (error.code, error.http_status, error.retry) == (None, 502, True)
    assert "502" in error.explanation


def test_a_read_timeout_may_have_sent(fake_graph, monkeypatch):
    monkeypatch.setattr(graph, "TIMEOUT", (3.05, 0.1))
    fake_graph.delay = 0.5

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)

    assert (caught.value.retry, caught.value.sent_unknown) == (True, True)
    assert len(fake_graph.sent()) == 1  # it did reach Meta


def test_a_refused_connection_has_not_sent(settings):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        closed_port = listener.getsockname()[1]
    settings.WHATSAPP_GRAPH_URL = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)

    assert (caught.value.retry, caught.value.sent_unknown) == (True, False)


def test_a_lost_answer_may_have_sent(fake_graph):
    fake_graph.drop_next()

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)

    assert (caught.value.retry, caught.value.sent_unknown) == (True, True)
    assert len(fake_graph.wamids) == 1  # Meta accepted it


def test_a_cut_answer_may_have_sent_and_the_next_send_gets_a_new_connection(fake_graph):
    graph.send_message(PNID, TEXT)  # a kept-alive connection now
    fake_graph.drop_next(midway=True)

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)
    wamid, _ = graph.send_message(PNID, TEXT)

    assert (caught.value.retry, caught.value.sent_unknown) == (True, True)
    assert wamid in fake_graph.wamids and len(fake_graph.sent()) == 3


def test_a_connection_the_server_closed_is_replaced_before_sending(fake_graph):
    port = int(fake_graph.url.rsplit(":", 1)[1])
    graph.send_message(PNID, TEXT)
    fake_graph.stop()  # closes its kept-alive connections, as Meta does with idle ones
    fake_graph.start(port=port)

    wamid, _ = graph.send_message(PNID, TEXT)  # not an error: nothing had been sent on the closed one

    assert wamid in fake_graph.wamids


def test_calls_go_through_the_proxy_of_the_environment(fake_graph, monkeypatch, settings):
    # The fake stands in for the proxy: a plain-HTTP request through a proxy names the whole URL.
    monkeypatch.setattr(graph, "PROXIES", {"http": f"http://user:secret@{fake_graph.url.removeprefix('http://')}"})
    monkeypatch.setattr(graph.urllib.request, "proxy_bypass", lambda host: False)
    settings.WHATSAPP_GRAPH_URL = "http://graph.example.invalid"

    graph.phone_number(PNID)

    request = fake_graph.requests[-1]
    assert (request.path, request.headers["Host"]) == (f"/v25.0/{PNID}", "graph.example.invalid")
    assert request.headers["Proxy-Authorization"] == "Basic dXNlcjpzZWNyZXQ="  # user:secret


def test_a_refused_proxy_has_not_sent(fake_graph, monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        closed_port = listener.getsockname()[1]
    monkeypatch.setattr(graph, "PROXIES", {"http": f"http://127.0.0.1:{closed_port}"})
    monkeypatch.setattr(graph.urllib.request, "proxy_bypass", lambda host: False)

    with pytest.raises(GraphError) as caught:
        graph.send_message(PNID, TEXT)

    assert (caught.value.retry, caught.value.sent_unknown) == (True, False)
    assert fake_graph.sent() == []


# --- Media (cloud-api.md §8) ---


def test_upload_sends_the_file_as_multipart(fake_graph):
    media_id = graph.upload_media(PNID, IMAGE, "image/jpeg", "photo.jpg")

    request = fake_graph.requests[-1]
    assert request.path == f"/v25.0/{PNID}/media"
    assert request.form == {"messaging_product": "whatsapp", "type": "image/jpeg"}
    assert request.files["file"] == ("photo.jpg", "image/jpeg", IMAGE)
    assert fake_graph.media[media_id].content == IMAGE


def test_uploaded_media_downloads_unchanged(fake_graph):
    media_id = graph.upload_media(PNID, IMAGE, "image/jpeg", "photo.jpg")

    info = graph.media_info(media_id)

    assert (info["id"], info["mime_type"], info["file_size"]) == (media_id, "image/jpeg", len(IMAGE))
    assert info["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert graph.download_media(info["url"], max_bytes=len(IMAGE)) == (IMAGE, "image/jpeg")


def test_download_carries_the_bearer_token(fake_graph):
    fake_graph.add_media("555", b"OggS voice", "audio/ogg")

    graph.download_media(graph.media_info("555")["url"], max_bytes=1000)

    assert fake_graph.requests[-1].path == "/media-download/555"
    assert fake_graph.requests[-1].headers["Authorization"] == "Bearer test-token"


def test_download_refuses_media_over_max_bytes(fake_graph):
    fake_graph.add_media("555", IMAGE, "image/jpeg")
    url = graph.media_info("555")["url"]

    with pytest.raises(GraphError) as caught:
        graph.download_media(url, max_bytes=len(IMAGE) - 1)

    assert (caught.value.code, caught.value.retry) == (131052, False)


def test_a_download_cut_midway_can_be_retried(fake_graph):
    fake_graph.add_media("555", IMAGE, "image/jpeg")
    url = graph.media_info("555")["url"]
    fake_graph.drop_next(path_contains="/media-download/", midway=True)

    with pytest.raises(GraphError) as caught:
        graph.download_media(url, max_bytes=len(IMAGE))

    assert caught.value.retry is True


@pytest.mark.parametrize("url", ["http://lookaside.fbsbx.com/whatsapp/1", "https://127.0.0.1/media/1",
                                 "https://localhost/x", "https://169.254.169.254/latest/meta-data/",
                                 "https://[::1]/x", "file:///etc/passwd", "https://10.1.2.3/x"])
def test_a_media_url_is_fetched_only_from_meta_or_a_public_https_host(fake_graph, url):
    with pytest.raises(GraphError):
        graph.download_media(url, max_bytes=1000)

    assert fake_graph.requests == []


def test_media_info_of_unknown_media_is_an_error(fake_graph):
    with pytest.raises(GraphError) as caught:
        graph.media_info("999")

    assert (caught.value.code, caught.value.http_status, caught.value.retry) == (100, 404, False)


def test_delete_media(fake_graph):
    fake_graph.add_media("555", IMAGE, "image/jpeg")

    graph.delete_media("555")

    assert (fake_graph.requests[-1].method, fake_graph.requests[-1].path) == ("DELETE", "/v25.0/555")
    assert "555" not in fake_graph.media


# --- Account (cloud-api.md §9-10) ---


def test_list_templates_follows_every_page(fake_graph):
    fake_graph.templates = [
        {"id": str(9000 + i), "name": f"template_{i}", "language": "pt_BR", "status": "APPROVED",
         "category": "UTILITY", "components": [{"type": "BODY", "text": f"Olá {{{{1}}}}, aviso {i}"}]}
        for i in range(250)
    ]

    templates = list(graph.list_templates(WABA, page_size=100))

    assert templates == fake_graph.templates
    assert [r.path for r in fake_graph.requests] == [f"/v25.0/{WABA}/message_templates"] * 3


def test_phone_number_reads_the_health_fields(fake_graph):
    number = graph.phone_number(PNID)

    assert number["id"] == PNID
    assert set(number) == {"id", *graph.PHONE_FIELDS.split(",")}
    assert (number["quality_rating"], number["status"], number["throughput"]) == (
        "GREEN", "CONNECTED", {"level": "STANDARD"})
    assert number["whatsapp_business_manager_messaging_limit"] == "TIER_250"


def test_subscribed_apps(fake_graph):
    apps = graph.subscribed_apps(WABA)

    assert [app["whatsapp_business_api_data"]["name"] for app in apps] == ["HOZ TECH"]
    assert fake_graph.requests[-1].path == f"/v25.0/{WABA}/subscribed_apps"


def test_each_thread_keeps_one_connection_per_host(fake_graph):
    for _ in range(3):
        graph.send_message(PNID, TEXT)
        graph.phone_number(PNID)

    assert fake_graph.connections_seen == 1
