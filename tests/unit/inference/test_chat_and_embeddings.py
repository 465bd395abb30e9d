"""Chat request validation, tool calls forced through a schema, embeddings encodings."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import pytest

import spruce.inference.chat as chat
import spruce.inference.embeddings as embeddings
from spruce.inference.errors import InferenceError

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "ls",
            "description": "List files",
            "parameters": {"type": "object", "properties": {"dir": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "date"}},
]


def msgs(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "JSON object"),
        ({"messages": []}, "messages is required"),
        ({"messages": [{"role": "user", "content": 5}]}, "content must be"),
        ({"messages": msgs(), "max_tokens": 0}, "max_tokens"),
        ({"messages": msgs(), "max_tokens": True}, "max_tokens"),
        ({"messages": msgs(), "temperature": 3}, "temperature"),
        ({"messages": msgs(), "stream": "yes"}, "stream"),
        ({"messages": msgs(), "stop": [1]}, "stop"),
        ({"messages": msgs(), "tools": [{"type": "function"}]}, "tools[0]"),
        (
            {
                "messages": msgs(),
                "tools": TOOLS,
                "tool_choice": {"type": "function", "function": {"name": "rm"}},
            },
            "unknown tool",
        ),
        ({"messages": msgs(), "response_format": {"type": "xml"}}, "response_format"),
        ({"messages": msgs(), "response_format": {"type": "json_schema"}}, "json_schema.schema"),
    ],
)
def test_invalid_chat_requests(body: Any, words: str) -> None:
    with pytest.raises(InferenceError) as e:
        chat.validate(body, 256)
    assert e.value.status == 400 and words in e.value.message


def test_validate_caps_and_renames_max_tokens() -> None:
    req = chat.validate({"messages": msgs(), "max_completion_tokens": 5000}, 256)
    assert req["max_tokens"] == 256 and "max_completion_tokens" not in req
    assert chat.validate({"messages": msgs()}, 64)["max_tokens"] == 64


def test_forced_tool_call_schema_and_prompt() -> None:
    req = chat.validate(
        {
            "messages": msgs("files?"),
            "tools": TOOLS,
            "tool_choice": "auto",
            "extended_thinking": {},
        },
        64,
    )
    local = chat.local_request(req, native_tools=False)
    assert "tools" not in local and "extended_thinking" not in local
    schema = local["response_format"]["json_schema"]["schema"]
    options = schema["oneOf"]
    assert [o["properties"].get("name", {}).get("const") for o in options] == ["ls", "date", None]
    assert options[0]["properties"]["arguments"]["additionalProperties"] is False
    assert options[2]["required"] == ["answer"]  # auto may answer in prose
    assert (
        local["messages"][0]["role"] == "system"
        and "- ls: List files" in local["messages"][0]["content"]
    )
    required = chat.local_request(
        dict(req, tool_choice={"type": "function", "function": {"name": "date"}}), False
    )
    only = required["response_format"]["json_schema"]["schema"]
    assert only["properties"]["name"] == {"const": "date"}
    native = chat.local_request(req, native_tools=True)
    assert native["tools"] == TOOLS and "response_format" not in native
    none = chat.local_request(dict(req, tool_choice="none"), native_tools=False)
    assert "response_format" not in none


def test_tool_turns_become_plain_text_for_small_models() -> None:
    history = [
        {"role": "user", "content": "files?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "ls", "content": "a.txt"},
    ]
    local = chat.local_request(chat.validate({"messages": history}, 64), False)
    assert local["messages"][1] == {
        "role": "assistant",
        "content": '{"name": "ls", "arguments": "{}"}',
    }
    assert local["messages"][2] == {"role": "user", "content": "ls returned: a.txt"}


def completion(content: str, finish: str = "stop") -> dict[str, Any]:
    return {
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }


def test_forced_answers_become_tool_calls_or_text() -> None:
    call = chat.as_tool_call(completion('{"name": "ls", "arguments": {"dir": "/"}}'))
    msg = call["choices"][0]["message"]
    assert call["choices"][0]["finish_reason"] == "tool_calls" and msg["content"] is None
    assert msg["tool_calls"][0]["function"] == {"name": "ls", "arguments": '{"dir": "/"}'}
    assert msg["tool_calls"][0]["id"].startswith("call_")
    text = chat.as_tool_call(completion('{"answer": "two files"}'))
    assert text["choices"][0]["message"]["content"] == "two files"
    cut = chat.as_tool_call(completion('{"name": "l', "length"))
    assert cut["choices"][0]["message"]["content"] == '{"name": "l'


def test_shape_and_replayed_chunks() -> None:
    c = chat.shape(chat.as_tool_call(completion('{"name": "date", "arguments": {}}')), "m")
    assert (
        c["object"] == "chat.completion" and c["model"] == "m" and c["usage"]["total_tokens"] == 7
    )
    assert c["choices"][0]["message"]["refusal"] is None

    async def collect() -> list[dict[str, Any]]:
        return [x async for x in chat.chunks_of(c)]

    chunks = asyncio.run(collect())
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 7
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)


def test_embeddings_validation() -> None:
    assert embeddings.validate({"input": "x"}) == (["x"], "float", "raw")
    assert embeddings.validate({"input": ["a"], "encoding_format": "float"})[2] == "raw"
    for body, words in [
        ({}, "input is required"),
        ({"input": [1]}, "input is required"),
        ({"input": ["x" * 2049]}, "longer than 2048"),
        ({"input": ["  "]}, "empty"),
        ({"input": "x", "input_type": "poem"}, "input_type"),
        ({"input": "x", "embedding_type": "int4"}, "embedding_type"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
    ]:
        with pytest.raises(InferenceError) as e:
            embeddings.validate(body)
        assert words in e.value.message


def test_embedding_types() -> None:
    v = [0.5, -1.5, 0.0, 0.25, -0.1, 0.9, 0.1, -0.2, 0.3]
    assert embeddings.convert(v, "int8") == [64, -127, 0, 32, -13, 114, 13, -25, 38]
    assert embeddings.convert(v, "uint8") == [192, 1, 128, 160, 115, 242, 141, 103, 166]
    assert embeddings.convert(v, "ubinary") == [0b10010110, 0b10000000]
    assert embeddings.convert(v, "binary") == [0b10010110 - 256, 0b10000000 - 256]
    raw = base64.b64decode(embeddings.encode(v, "float"))
    assert struct.unpack("<9f", raw) == pytest.approx(v)
    assert base64.b64decode(embeddings.encode(embeddings.convert(v, "int8"), "int8"))[1] == 0x81
    body = embeddings.response([v], 3, "m", "float", "raw")
    assert body["data"][0]["embedding"] is body["data"][0]["embeddings"]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert json.loads(json.dumps(body))["model"] == "m"
