"""The one place aiohttp's errors become httpx's (sending/_http.py), directly: each kind
maps to the httpx error the sender turns into an outcome, the request attached, the
message kept; and the helpers that describe them for the log."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from postback_lab.sending._http import _describe, _httpx_error, _not_really_a_timeout

REQUEST = httpx.Request("GET", "http://127.0.0.1:9/p")
URL = yarl.URL("http://127.0.0.1:9/p")
INFO = aiohttp.RequestInfo(URL, "GET", CIMultiDictProxy(CIMultiDict()), URL)


class _Key:
    """What ClientConnectorError reads of its connection key."""

    host, port, ssl = "127.0.0.1", 9, False


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (aiohttp.ConnectionTimeoutError("no connection"), httpx.ConnectTimeout, "no connection"),
        (aiohttp.ServerTimeoutError("no answer"), httpx.ReadTimeout, "no answer"),
        (
            aiohttp.ClientConnectorError(_Key(), ConnectionRefusedError(111, "refused")),
            httpx.ConnectError,
            "Cannot connect to host 127.0.0.1:9 ssl:False [refused]",
        ),
        (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol, "ftp://x"),
        (aiohttp.ClientPayloadError("cut short"), httpx.ReadError, "cut short"),
        (
            aiohttp.ServerDisconnectedError(),
            httpx.RemoteProtocolError,
            "Server disconnected",
        ),
        (
            aiohttp.ClientResponseError(INFO, (), status=400, message="bad header"),
            httpx.RemoteProtocolError,
            "400, message='bad header', url='http://127.0.0.1:9/p'",
        ),
        (
            aiohttp.ClientOSError(104, "reset by peer"),
            httpx.NetworkError,
            "[Errno 104] reset by peer",
        ),
    ],
)
def test_each_aiohttp_error_becomes_the_httpx_error_it_stands_for(error, kind, text):
    mapped = _httpx_error(error, REQUEST)
    assert type(mapped) is kind
    assert str(mapped) == text
    assert mapped.request is REQUEST


def test_an_error_without_a_message_is_named_by_its_class():
    assert str(_httpx_error(aiohttp.ClientError(), REQUEST)) == "ClientError"


def test_a_connect_timeout_caused_by_a_reset_is_not_really_a_timeout():
    def raised(cause: BaseException | None) -> httpx.ConnectTimeout:
        exc = httpx.ConnectTimeout("timed out", request=REQUEST)
        exc.__cause__ = cause
        return exc

    assert _not_really_a_timeout(raised(ConnectionResetError("reset")))
    assert not _not_really_a_timeout(raised(TimeoutError()))
    assert not _not_really_a_timeout(raised(aiohttp.ServerTimeoutError("slow")))
    assert not _not_really_a_timeout(raised(None))


def test_describe_names_the_cause():
    exc = httpx.ConnectError("wrapped", request=REQUEST)
    exc.__cause__ = ConnectionRefusedError("refused")
    assert _describe(exc) == "ConnectionRefusedError: refused"
    assert _describe(httpx.ReadTimeout("", request=REQUEST)) == "ReadTimeout"
