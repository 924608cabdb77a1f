"""The backend SSE decoder: messages split across chunks, priming events and comments."""

from __future__ import annotations

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
