"""A tiny OpenAI-compatible server for attacker tests: canned or computed replies, scripted failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DEFAULT_REPLY = "Tell me about the history of chemistry in the 1900s."


class StandIn:
    """A tiny OpenAI-compatible server: canned replies, scripted failures, every request recorded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail: list[int] = []  # status codes to answer with, consumed one per request
        self.delay_s = 0.0
        self.reply: str | Callable[[dict[str, Any]], str] = DEFAULT_REPLY
        app = FastAPI()

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "stand-in", "object": "model", "created": 0, "owned_by": "t"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.requests.append(body)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail:
                code = self.fail.pop(0)
                return JSONResponse({"error": {"message": f"scripted {code}", "type": "x"}}, status_code=code)
            text = self.reply(body) if callable(self.reply) else self.reply
            return {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }

        self.app = app

    def reset(self) -> None:
        """Forget requests, failures, delay and a computed reply."""
        self.requests.clear()
        self.fail, self.delay_s, self.reply = [], 0.0, DEFAULT_REPLY
