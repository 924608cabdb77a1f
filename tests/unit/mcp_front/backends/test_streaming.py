"""The backend SSE decoder: messages split across chunks, priming events and comments."""

from __future__ import annotations

import pytest

from mcp_front.backends.http11 import _MAX_BODY_BYTES, ResponseTooLarge
from mcp_front.backends.streaming import SseDecoder


def test_a_message_split_across_chunks_arrives_once_complete() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'event: message\r\ndata: {"jsonrpc":"2.0",') == []
    assert decoder.feed(b'"method":"notifications/progress"}\r\n\r\n') == [
        {"jsonrpc": "2.0", "method": "notifications/progress"}
    ]


def test_priming_events_comments_and_non_json_data_are_skipped() -> None:
    decoder = SseDecoder()
    stream = b'id: 1\ndata: \n\n: ping\n\ndata: not json\n\ndata: {"id": 3, "result": {}}\n\n'
    assert decoder.feed(stream) == [{"id": 3, "result": {}}]


def test_each_event_is_bounded_but_not_the_stream() -> None:
    """Regression: the whole stream was capped, so a tool streaming more than 15 MiB of
    progress failed; one event (the result included) over the cap still fails."""
    decoder = SseDecoder()
    note = b'data: {"method":"notifications/progress","params":{"message":"' + b"p" * 1_048_576 + b'"}}\n\n'
    for _ in range(_MAX_BODY_BYTES // len(note) + 2):
        assert len(decoder.feed(note)) == 1
    with pytest.raises(ResponseTooLarge):
        for _ in range(_MAX_BODY_BYTES // 1_048_576 + 1):  # one event arriving in pieces, never ending
            decoder.feed(b"data: " + b"x" * 1_048_576)
