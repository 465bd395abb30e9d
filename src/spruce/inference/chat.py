"""Chat completion requests: validation, and tool calls for models without native ones.

Small local models do not fill `tool_calls` (SmolLM2 and Qwen 0.5B wrote prose or JSON in
`content`, whatever `tool_choice` said). For a model whose catalogue entry lacks
`native_tools`, a request with tools is turned into a grammar-constrained one: the tools are
described in a system message, and `response_format` carries a JSON schema that admits only
`{"name": <one tool>, "arguments": <its parameters>}` (plus `{"answer": "..."}` when
`tool_choice` is `auto`). llama.cpp compiles the schema to a grammar, so the model cannot
answer anything else, and the JSON is turned back into an OpenAI `tool_calls` message.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from .errors import invalid

ROLES = ("system", "user", "assistant", "tool", "developer")
# what a local model is given; Heroku's own extras (extended_thinking, ...) are dropped
LOCAL_FIELDS = (
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "frequency_penalty",
    "presence_penalty",
    "ignore_eos",  # llama.cpp's: generate exactly max_tokens (benchmarks, load tests)
)


def _check_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise invalid("tools must be a list")
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(fn, dict):
            raise invalid(f"tools[{i}] must be {{type: function, function: {{name, ...}}}}")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid(f"tools[{i}].function.name is required")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise invalid(f"tools[{i}].function.parameters must be a JSON schema object")
    return tools


def validate(body: Any, max_tokens_cap: int) -> dict[str, Any]:
    """The request as the backend should get it (a copy), or InferenceError(400)."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages is required: a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise invalid(f"messages[{i}].role must be one of {', '.join(ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid(f"messages[{i}].content must be a string or a list of parts")
    req = copy.deepcopy(body)
    if "max_completion_tokens" in req and "max_tokens" not in req:
        req["max_tokens"] = req.pop("max_completion_tokens")
    mt = req.get("max_tokens", max_tokens_cap)
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        raise invalid("max_tokens must be a positive integer")
    req["max_tokens"] = min(mt, max_tokens_cap)
    for name, lo, hi in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        v = req.get(name)
        if v is not None and (not isinstance(v, (int, float)) or not lo <= v <= hi):
            raise invalid(f"{name} must be a number from {lo:g} to {hi:g}")
    for flag in ("stream", "ignore_eos"):
        if flag in req and not isinstance(req[flag], bool):
            raise invalid(f"{flag} must be true or false")
    stop = req.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise invalid("stop must be a string or a list of strings")
    if "tools" in req:
        _check_tools(req["tools"])
    choice = req.get("tool_choice")
    if choice is not None:
        names = {t["function"]["name"] for t in req.get("tools", [])}
        if isinstance(choice, dict):
            fn = choice.get("function")
            if choice.get("type") != "function" or not isinstance(fn, dict):
                raise invalid(
                    "tool_choice must be none, auto, required or {type: function, function: {name}}"
                )
            if fn.get("name") not in names:
                raise invalid(f"tool_choice names an unknown tool: {fn.get('name')}")
        elif choice not in ("none", "auto", "required", "any"):
            raise invalid(
                "tool_choice must be none, auto, required or {type: function, function: {name}}"
            )
    rf = req.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise invalid("response_format.type must be text, json_object or json_schema")
        if rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
                raise invalid("response_format.json_schema.schema must be a JSON schema object")
    return req


# -- tool calls forced through a schema -------------------------------------------------
def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy(schema) or {"type": "object", "properties": {}}
    if s.get("type") == "object":
        s.setdefault("properties", {})
        s.setdefault("additionalProperties", False)
    return s


def _choices(req: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The tools the model may call, and whether it may answer in prose instead."""
    tools = [t["function"] for t in req.get("tools", [])]
    choice = req.get("tool_choice", "auto")
    if isinstance(choice, dict):
        return [t for t in tools if t["name"] == choice["function"]["name"]], False
    if choice in ("required", "any"):
        return tools, False
    return tools, True


def needs_forcing(req: dict[str, Any], native_tools: bool) -> bool:
    return bool(req.get("tools")) and req.get("tool_choice") != "none" and not native_tools


def _plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool turns as plain text: small models' chat templates know no tool roles."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role == "assistant" and m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": c["function"].get("arguments")}
                for c in m["tool_calls"]
                if isinstance(c, dict) and isinstance(c.get("function"), dict)
            ]
            out.append(
                {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        elif role == "tool":
            name = m.get("name") or "the tool"
            out.append({"role": "user", "content": f"{name} returned: {content}"})
        elif role == "developer":
            out.append({"role": "system", "content": content or ""})
        else:
            out.append({"role": role, "content": content or ""})
    return out


FORCED_MIN_TOKENS = 96


def local_request(req: dict[str, Any], native_tools: bool) -> dict[str, Any]:
    """What a local model is sent: known fields, and tools forced through a schema."""
    local = {k: req[k] for k in LOCAL_FIELDS if k in req}
    if native_tools:
        for k in ("tools", "tool_choice"):
            if k in req:
                local[k] = req[k]
        return local
    local["messages"] = _plain_messages(req["messages"])
    if not needs_forcing(req, native_tools):
        return local
    tools, may_answer = _choices(req)
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["name"]},
                "arguments": _closed(t.get("parameters") or {}),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    lines = ["You can call these tools:"]
    for t in tools:
        params = json.dumps(t.get("parameters") or {"type": "object", "properties": {}})
        lines.append(f"- {t['name']}: {t.get('description', '')} Arguments: {params}")
    lines.append('To call a tool, reply with JSON {"name": <tool>, "arguments": {...}}.')
    if may_answer:
        options.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
        lines.append('To answer the user directly instead, reply with JSON {"answer": "..."}.')
    schema = options[0] if len(options) == 1 else {"oneOf": options}
    # a call cut short is no call at all: leave room for the JSON whatever max_tokens says
    local["max_tokens"] = max(int(local.get("max_tokens", 0)), FORCED_MIN_TOKENS)
    local["messages"] = [{"role": "system", "content": "\n".join(lines)}, *local["messages"]]
    local["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "tool_call", "schema": schema},
    }
    return local


def call_id() -> str:
    return "call_" + secrets.token_hex(12)


def as_tool_call(completion: dict[str, Any]) -> dict[str, Any]:
    """Turn a forced JSON answer back into an OpenAI message with `tool_calls`."""
    for choice in completion.get("choices", []):
        msg = choice.get("message") or {}
        try:
            data = json.loads(msg.get("content") or "")
        except ValueError:
            continue  # cut short (finish_reason length): leave the text as it is
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            msg["content"] = None
            msg["tool_calls"] = [
                {
                    "id": call_id(),
                    "type": "function",
                    "function": {
                        "name": data["name"],
                        "arguments": json.dumps(data.get("arguments") or {}),
                    },
                }
            ]
            choice["finish_reason"] = "tool_calls"
        elif isinstance(data, dict) and isinstance(data.get("answer"), str):
            msg["content"] = data["answer"]
        choice["message"] = msg
    return completion


def shape(completion: dict[str, Any], model_id: str) -> dict[str, Any]:
    """The spec's chat.completion fields, whatever the backend filled."""
    completion["model"] = model_id
    completion.setdefault("id", "chatcmpl-" + secrets.token_hex(12))
    completion["object"] = "chat.completion"
    completion.setdefault("created", int(time.time()))
    completion.setdefault("system_fingerprint", "spruce")
    for i, choice in enumerate(completion.get("choices", [])):
        choice.setdefault("index", i)
        msg = choice.setdefault("message", {})
        msg.setdefault("role", "assistant")
        msg.setdefault("content", None)
        msg.setdefault("refusal", None)
    usage = completion.setdefault("usage", {})
    for k in ("prompt_tokens", "completion_tokens"):
        usage[k] = int(usage.get(k, 0))
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return completion


async def chunks_of(completion: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """A finished completion as stream chunks (for forced tool calls, answered whole)."""
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    choice = completion["choices"][0]
    msg = choice["message"]
    yield dict(
        base,
        choices=[
            {"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}
        ],
    )
    if msg.get("tool_calls"):
        calls = [dict(c, index=i) for i, c in enumerate(msg["tool_calls"])]
        delta: dict[str, Any] = {"tool_calls": calls}
    else:
        delta = {"content": msg.get("content") or ""}
    yield dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}])
    yield dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}])
    yield dict(base, choices=[], usage=completion["usage"])
