#!/usr/bin/env python3
"""The official OpenAI and Anthropic Python SDKs as real clients of Sluice.

Run against a proxy whose providers `mock`, `oai` (openai-compatible) and
`ant` (anthropic) all point at `sluice mock-provider`, with the
translator_openai_anthropic plugin loaded and no routing.default_provider
(so an unknown provider prefix is a 404):

    SLUICE_BASE_URL=http://127.0.0.1:8080 target/pyenv/bin/python \
        proxy/tests/sdk/check_sdks.py

Every check runs for both SDKs and both routes: same shape (`mock:`, no
translation) and crossed (`ant:` for OpenAI clients, `oai:` for Anthropic
clients, through the translator). Prints `PASS name` / `FAIL name: reason`
per check, then `N passed, M failed`; exits 1 if any check failed.

Needs openai==3.54.0 and anthropic==2.12.0 (`make sdk-env`).
"""

import json
import os
import sys
import traceback
from functools import partial

import anthropic
import openai

BASE = os.environ["SLUICE_BASE_URL"].rstrip("/")
# No retries: a failure should show up as itself, at once.
OAI = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test", max_retries=0, timeout=30)
ANT = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test", max_retries=0, timeout=30)

# (same shape, crossed through the translator)
OPENAI_MODELS = ("mock:gpt-4o-mini", "ant:claude-sonnet-4-6")
ANTHROPIC_MODELS = ("mock:claude-sonnet-4-6", "oai:gpt-4o-mini")

QUESTION = "What is the weather in Paris?"
TOOL_RESULT = "18C and sunny"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER_SCHEMA,
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": WEATHER_SCHEMA,
}
PARIS = {"city": "Paris"}


class CheckFailed(Exception):
    pass


def expect(cond, what, *got):
    if not cond:
        detail = " ".join(repr(g) for g in got)
        raise CheckFailed(f"{what}; got {detail}" if got else what)


def expect_eq(got, want, what):
    expect(got == want, f"{what}: want {want!r}", got)


def provider_of(model):
    return model.split(":", 1)[0]


# --- OpenAI SDK -------------------------------------------------------------


def openai_chat(model):
    raw = OAI.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "hello there"}],
        max_completion_tokens=64,
    )
    expect_eq(raw.headers.get("x-sluice-provider"), provider_of(model), "x-sluice-provider")
    resp = raw.parse()
    expect_eq(resp.model, model, "echoed model")
    expect_eq(len(resp.choices), 1, "choices")
    choice = resp.choices[0]
    expect_eq(choice.message.role, "assistant", "role")
    expect_eq(choice.message.content, "Mock reply to: hello there", "reply text")
    expect_eq(choice.finish_reason, "stop", "finish_reason")
    u = resp.usage
    expect(u is not None and u.prompt_tokens > 0 and u.completion_tokens > 0, "usage counted", u)
    expect_eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, "total_tokens")


def openai_stream(model):
    stream = OAI.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage_chunks, chunks = "", None, [], 0
    for chunk in stream:
        chunks += 1
        expect_eq(chunk.model, model, "chunk model")
        if not chunk.choices:
            usage_chunks.append(chunk.usage)
            continue
        expect(chunk.usage is None, "usage only on the final chunk", chunk.usage)
        delta = chunk.choices[0].delta
        text += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    expect(chunks >= 3, "several chunks", chunks)
    expect_eq(text, "Mock reply to: stream please", "streamed text")
    expect_eq(finish, "stop", "finish_reason")
    expect_eq(len(usage_chunks), 1, "usage chunks")
    u = usage_chunks[0]
    expect(u is not None and u.prompt_tokens > 0 and u.completion_tokens > 0, "usage counted", u)
    expect_eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, "total_tokens")


def openai_tools(model):
    messages = [{"role": "user", "content": QUESTION}]
    first = OAI.chat.completions.create(
        model=model, messages=messages, tools=[OPENAI_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    expect_eq(choice.finish_reason, "tool_calls", "turn 1 finish_reason")
    calls = choice.message.tool_calls or []
    expect_eq(len(calls), 1, "turn 1 tool calls")
    call = calls[0]
    expect(call.id, "tool call id", call.id)
    expect_eq(call.function.name, "get_weather", "tool name")
    expect_eq(json.loads(call.function.arguments), PARIS, "tool arguments")

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
    ]
    second = OAI.chat.completions.create(model=model, messages=messages, tools=[OPENAI_TOOL])
    reply = second.choices[0].message
    expect(not reply.tool_calls, "turn 2 calls no tool", reply.tool_calls)
    expect(
        f"Tool result received: {TOOL_RESULT}" in (reply.content or ""),
        "turn 2 acknowledges the tool result",
        reply.content,
    )
    expect_eq(second.choices[0].finish_reason, "stop", "turn 2 finish_reason")


def openai_stream_tools(model):
    stream = OAI.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        tools=[OPENAI_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        stream_options={"include_usage": True},
    )
    # Accumulate like the SDK does: strings concatenate, so a resent id or
    # name would show up doubled.
    calls, finish, usage = {}, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += tc.id or ""
            if tc.function:
                slot["name"] += tc.function.name or ""
                slot["arguments"] += tc.function.arguments or ""
    expect_eq(sorted(calls), [0], "tool call indexes")
    call = calls[0]
    expect(call["id"], "tool call id", call)
    expect_eq(call["name"], "get_weather", "tool name")
    expect_eq(json.loads(call["arguments"]), PARIS, "tool arguments")
    expect_eq(finish, "tool_calls", "finish_reason")
    expect(usage is not None and usage.completion_tokens > 0, "usage chunk", usage)


def openai_error_n_crossed():
    """n > 1 cannot be translated: 400 naming the parameter, not a silent fan-out."""
    try:
        OAI.chat.completions.create(
            model=OPENAI_MODELS[1], messages=[{"role": "user", "content": "hi"}], n=2
        )
    except openai.BadRequestError as e:
        expect_eq(e.status_code, 400, "status")
        expect_eq(e.param, "n", "error param")
        expect_eq(e.type, "invalid_request_error", "error type")
        return
    raise CheckFailed("no BadRequestError raised")


def openai_error_unknown_provider():
    """No provider is named `nope` (and no default is set): 404 model_not_found."""
    try:
        OAI.chat.completions.create(model="nope:x", messages=[{"role": "user", "content": "hi"}])
    except openai.NotFoundError as e:
        expect_eq(e.status_code, 404, "status")
        expect_eq(e.code, "model_not_found", "error code")
        expect_eq(e.param, "model", "error param")
        return
    raise CheckFailed("no NotFoundError raised")


def openai_error_not_found():
    """An upstream 404 reaches the client as the SDK's NotFoundError."""
    try:
        OAI.chat.completions.create(
            model=OPENAI_MODELS[0],
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-error": "404"},
        )
    except openai.NotFoundError as e:
        expect_eq(e.status_code, 404, "status")
        expect_eq(e.code, "model_not_found", "error code")
        return
    raise CheckFailed("no NotFoundError raised")


# --- Anthropic SDK ----------------------------------------------------------


def anthropic_chat(model):
    raw = ANT.messages.with_raw_response.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hello there"}]
    )
    expect_eq(raw.headers.get("x-sluice-provider"), provider_of(model), "x-sluice-provider")
    msg = raw.parse()
    expect_eq(msg.model, model, "echoed model")
    expect_eq(msg.role, "assistant", "role")
    expect_eq([b.type for b in msg.content], ["text"], "content blocks")
    expect_eq(msg.content[0].text, "Mock reply to: hello there", "reply text")
    expect_eq(msg.stop_reason, "end_turn", "stop_reason")
    expect(msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, "usage counted", msg.usage)


def anthropic_stream(model):
    with ANT.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "stream please"}]
    ) as stream:
        text = "".join(stream.text_stream)
        msg = stream.get_final_message()
    expect_eq(text, "Mock reply to: stream please", "streamed text")
    expect_eq(msg.model, model, "echoed model")
    expect_eq([b.type for b in msg.content], ["text"], "content blocks")
    expect_eq(msg.content[0].text, text, "final message text")
    expect_eq(msg.stop_reason, "end_turn", "stop_reason")
    expect(msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, "usage counted", msg.usage)


def tool_use_blocks(msg):
    return [b for b in msg.content if b.type == "tool_use"]


def anthropic_tools(model):
    messages = [{"role": "user", "content": QUESTION}]
    first = ANT.messages.create(
        model=model,
        max_tokens=256,
        messages=messages,
        tools=[ANTHROPIC_TOOL],
        tool_choice={"type": "any"},
    )
    expect_eq(first.stop_reason, "tool_use", "turn 1 stop_reason")
    uses = tool_use_blocks(first)
    expect_eq(len(uses), 1, "turn 1 tool_use blocks")
    use = uses[0]
    expect(use.id, "tool_use id", use.id)
    expect_eq(use.name, "get_weather", "tool name")
    expect_eq(use.input, PARIS, "tool input")

    messages += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}],
        },
    ]
    second = ANT.messages.create(
        model=model, max_tokens=256, messages=messages, tools=[ANTHROPIC_TOOL]
    )
    expect(not tool_use_blocks(second), "turn 2 calls no tool", second.content)
    text = "".join(b.text for b in second.content if b.type == "text")
    expect(
        f"Tool result received: {TOOL_RESULT}" in text,
        "turn 2 acknowledges the tool result",
        text,
    )
    expect_eq(second.stop_reason, "end_turn", "turn 2 stop_reason")


def anthropic_stream_tools(model):
    with ANT.messages.stream(
        model=model,
        max_tokens=256,
        messages=[{"role": "user", "content": QUESTION}],
        tools=[ANTHROPIC_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        msg = stream.get_final_message()
    uses = tool_use_blocks(msg)
    expect_eq(len(uses), 1, "tool_use blocks")
    expect(uses[0].id, "tool_use id", uses[0].id)
    expect_eq(uses[0].name, "get_weather", "tool name")
    expect_eq(uses[0].input, PARIS, "tool input")
    expect_eq(msg.stop_reason, "tool_use", "stop_reason")
    expect(msg.usage.output_tokens > 0, "usage counted", msg.usage)


def anthropic_error_missing_max_tokens(model):
    """`max_tokens` is required: 400 invalid_request_error, same shape or crossed."""
    try:
        # omit passes the SDK's required-argument check but sends no max_tokens.
        ANT.messages.create(
            model=model, max_tokens=anthropic.omit, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.BadRequestError as e:
        expect_eq(e.status_code, 400, "status")
        expect_eq(e.body["error"]["type"], "invalid_request_error", "error type")
        expect("max_tokens" in e.message, "message names max_tokens", e.message)
        return
    raise CheckFailed("no BadRequestError raised")


def anthropic_error_unknown_provider():
    """No provider is named `nope` (and no default is set): 404 not_found_error."""
    try:
        ANT.messages.create(
            model="nope:x", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.NotFoundError as e:
        expect_eq(e.status_code, 404, "status")
        expect_eq(e.body["error"]["type"], "not_found_error", "error type")
        expect("nope:x" in e.message, "message names the model", e.message)
        return
    raise CheckFailed("no NotFoundError raised")


def anthropic_error_not_found():
    """An upstream 404 reaches the client as the SDK's NotFoundError."""
    try:
        ANT.messages.create(
            model=ANTHROPIC_MODELS[0],
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-error": "404"},
        )
    except anthropic.NotFoundError as e:
        expect_eq(e.status_code, 404, "status")
        expect_eq(e.body["error"]["type"], "not_found_error", "error type")
        return
    raise CheckFailed("no NotFoundError raised")


# --- The table --------------------------------------------------------------

PER_MODEL = [
    (OPENAI_MODELS, [openai_chat, openai_stream, openai_tools, openai_stream_tools]),
    (
        ANTHROPIC_MODELS,
        [
            anthropic_chat,
            anthropic_stream,
            anthropic_tools,
            anthropic_stream_tools,
            anthropic_error_missing_max_tokens,
        ],
    ),
]
SINGLE = [
    openai_error_n_crossed,
    openai_error_unknown_provider,
    openai_error_not_found,
    anthropic_error_unknown_provider,
    anthropic_error_not_found,
]

CHECKS = [
    (f"{fn.__name__} {model}", partial(fn, model))
    for models, fns in PER_MODEL
    for fn in fns
    for model in models
] + [(fn.__name__, fn) for fn in SINGLE]


def run(name, fn):
    try:
        fn()
    except CheckFailed as e:
        return f"FAIL {name}: {e}"
    except Exception as e:  # an SDK error or a broken response: show it whole
        detail = "".join(traceback.format_exception_only(e)).strip()
        body = getattr(e, "body", None)
        if body is not None and repr(body) not in detail:
            detail += f" body={body!r}"
        return f"FAIL {name}: {detail}"
    return f"PASS {name}"


def main():
    failed = 0
    for name, fn in CHECKS:
        line = run(name, fn)
        failed += line.startswith("FAIL")
        print(line, flush=True)
    print(f"{len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
