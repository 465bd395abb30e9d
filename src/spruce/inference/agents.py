"""`POST /v1/agents/heroku`: the model, its tool calls, their runs, and the model again.

The loop (spec section 3): ask the model with the tools; if it answers `tool_calls`, run
each (a Heroku tool or an MCP server's tool, each in a one-off dyno of `target_app_name`),
give the results back, and ask again, until the model stops. Every model answer is a
`chat.completion` event and every tool run a `tool.completion` event. A tool is offered at
most `max_calls` times per request; when no tool is left, the model answers without tools.

A model without native tool calling is given `tool_choice: required` until the first tool
result is in, then `auto`: otherwise a small model tends to answer before it has looked.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from . import chat
from .errors import InferenceError, invalid
from .link import KeyGrant
from .mcp_bridge import McpHub
from .service import InferenceService, Model
from .tools import HEROKU_TOOLS, HerokuTools, ToolSpec, describe, text_result

MAX_TTL = 120
DEFAULT_SIZE = "standard-1x"
NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass
class AgentPlan:
    grant: KeyGrant
    model: Model
    messages: list[dict[str, Any]]
    tools: list[ToolSpec]
    options: dict[str, Any]
    session_id: str


def _function_name(name: str, taken: set[str]) -> str:
    base = "".join(c if c in NAME_OK else "__" if c == "/" else "_" for c in name)[:60]
    fn, n = base, 2
    while fn in taken:
        fn, n = f"{base}_{n}", n + 1
    taken.add(fn)
    return fn


class AgentRunner:
    def __init__(self, service: InferenceService, hub: McpHub, tools: HerokuTools) -> None:
        self.service = service
        self.hub = hub
        self.heroku = tools

    def plan(self, grant: KeyGrant, model: Model, body: Any) -> AgentPlan:
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid("messages is required: a non-empty list")
        mt = body.get("max_tokens_per_inference_request", model.spec.max_tokens)
        options: dict[str, Any] = {"max_tokens": mt}
        for k in ("temperature", "top_p", "stop"):
            if k in body:
                options[k] = body[k]
        # the same checks as a chat request (roles, numbers, stop)
        chat.validate({"messages": messages, **options}, model.spec.max_tokens)
        raw_tools = body.get("tools", [])
        if not isinstance(raw_tools, list):
            raise invalid("tools must be a list")
        taken: set[str] = set()
        specs = [self._tool(grant, t, i, taken) for i, t in enumerate(raw_tools)]
        return AgentPlan(
            grant, model, list(messages), specs, options, "agent-" + secrets.token_hex(12)
        )

    def _tool(self, grant: KeyGrant, raw: Any, i: int, taken: set[str]) -> ToolSpec:
        where = f"tools[{i}]"
        if not isinstance(raw, dict) or raw.get("type") not in ("heroku_tool", "mcp"):
            raise invalid(f"{where}.type must be heroku_tool or mcp")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"{where}.name is required")
        if raw["type"] == "heroku_tool" and name not in HEROKU_TOOLS:
            raise invalid(f"{where}: unknown Heroku tool {name} (one of {', '.join(HEROKU_TOOLS)})")
        rp = raw.get("runtime_params") or {}
        if not isinstance(rp, dict):
            raise invalid(f"{where}.runtime_params must be an object")
        ttl = rp.get("ttl_seconds", MAX_TTL)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
            raise invalid(f"{where}.runtime_params.ttl_seconds must be from 1 to {MAX_TTL}")
        max_calls = rp.get("max_calls", 3)
        if not isinstance(max_calls, int) or isinstance(max_calls, bool) or max_calls < 1:
            raise invalid(f"{where}.runtime_params.max_calls must be a positive integer")
        size = rp.get("dyno_size", DEFAULT_SIZE)
        if not isinstance(size, str) or not size:
            raise invalid(f"{where}.runtime_params.dyno_size must be a dyno size name")
        app = rp.get("target_app_name") or grant.app_name
        if not isinstance(app, str):
            raise invalid(f"{where}.runtime_params.target_app_name must be an app name")
        params = rp.get("tool_params") or {}
        if not isinstance(params, dict):
            raise invalid(f"{where}.runtime_params.tool_params must be an object")
        if raw["type"] == "heroku_tool":
            description, schema = describe(name, params)
        else:
            description, schema = str(raw.get("description") or ""), {}
        if raw.get("description"):
            description = str(raw["description"])
        return ToolSpec(
            type=raw["type"],
            name=name,
            function=_function_name(name, taken),
            description=description,
            parameters=schema,
            app_name=app,
            size=size,
            ttl_seconds=ttl,
            max_calls=max_calls,
            tool_params=params,
        )

    async def _mcp_schemas(self, plan: AgentPlan) -> None:
        wanted = [t for t in plan.tools if t.type == "mcp"]
        if not wanted:
            return
        known = {t["namespaced_name"]: t for t in await self.hub.tools(plan.grant)}
        for t in wanted:
            found = known.get(t.name)
            if found is None:
                raise InferenceError(400, f"no registered MCP tool named {t.name}")
            t.parameters = found["input_schema"] or {"type": "object", "properties": {}}
            t.description = t.description or found["description"]

    def _event(
        self,
        plan: AgentPlan,
        obj: str,
        message: dict[str, Any],
        finish: str | None,
        usage: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": plan.session_id,
            "object": obj,
            "created": int(time.time()),
            "model": plan.model.spec.id,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": usage,
        }

    async def run(self, plan: AgentPlan) -> AsyncIterator[dict[str, Any]]:
        await self._mcp_schemas(plan)
        messages = list(plan.messages)
        by_function = {t.function: t for t in plan.tools}
        ran_any = False
        rounds = sum(t.max_calls for t in plan.tools) + 1
        for _ in range(rounds):
            offered = [t for t in plan.tools if t.calls < t.max_calls]
            req: dict[str, Any] = {"messages": messages, **plan.options}
            if offered:
                req["tools"] = [
                    {
                        "type": "function",
                        "function": {
                            "name": t.function,
                            "description": t.description,
                            "parameters": t.parameters,
                        },
                    }
                    for t in offered
                ]
                forced = not plan.model.native_tools and not ran_any
                req["tool_choice"] = "required" if forced else "auto"
            completion = await self.service.complete(plan.grant, plan.model, req, kind="agents")
            choice = completion["choices"][0]
            message = choice["message"]
            yield self._event(
                plan, "chat.completion", message, choice["finish_reason"], completion["usage"]
            )
            calls = message.get("tool_calls") or []
            if choice["finish_reason"] != "tool_calls" or not calls:
                return
            messages.append(
                {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
            )
            for call in calls:
                fn = call.get("function") or {}
                tool = by_function.get(fn.get("name", ""))
                result = await self._run_tool(plan, tool, fn.get("arguments"))
                ran_any = True
                name = tool.name if tool else str(fn.get("name"))
                content = f"Tool '{name}' returned result: {json.dumps(result)}"
                tool_msg = {
                    "role": "tool",
                    "content": content,
                    "tool_call_id": call.get("id"),
                    "name": name,
                }
                yield self._event(plan, "tool.completion", tool_msg, "stop", {})
                messages.append(tool_msg)

    async def _run_tool(
        self, plan: AgentPlan, tool: ToolSpec | None, raw_args: Any
    ) -> dict[str, Any]:
        if tool is None:
            return text_result("the model called a tool that was not offered", True)
        if tool.calls >= tool.max_calls:
            return text_result(f"{tool.name} may be called at most {tool.max_calls} times", True)
        tool.calls += 1
        try:
            args = (
                json.loads(raw_args) if isinstance(raw_args, str) and raw_args else raw_args or {}
            )
        except ValueError:
            return text_result("the tool arguments are not valid JSON", True)
        if not isinstance(args, dict):
            return text_result("the tool arguments must be a JSON object", True)
        if tool.type == "mcp":
            try:
                return await self.hub.call(
                    plan.grant, tool.name, args, size=tool.size, ttl_seconds=tool.ttl_seconds
                )
            except InferenceError as e:
                return text_result(e.message, True)
        return await self.heroku.run(plan.grant.addon_id, tool, args)
