"""A stand-in Ollama server that replays recorded answers: ``/api/tags`` lists one model and
each ``/api/chat`` answers the next recorded message content (or an HTTP error), keeping every
request it got. For replaying cases without a model, and for the answers a real model rarely
gives (invalid JSON, out-of-bounds numbers, unknown evidence ids)."""

from __future__ import annotations

import json

from tests.support import LocalServer, QuietHandler

MODEL = "recorded:1b"


class RecordedOllama:
    def __init__(self, answers: list[str | tuple[int, str]], model: str = MODEL):
        """``answers``: message contents, or (status, error) for an error answer; the last repeats."""
        self.answers, self.model, self.requests = list(answers), model, []
        recorded = self

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path == "/api/tags":
                    self._send(200, {"models": [{"name": recorded.model, "model": recorded.model}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorded.requests.append(request)
                answer = recorded.answers[min(len(recorded.requests), len(recorded.answers)) - 1]
                if isinstance(answer, tuple):
                    return self._send(answer[0], {"error": answer[1]})
                self._send(200, {"model": recorded.model, "created_at": "2026-03-01T12:00:00Z", "done": True,
                                 "message": {"role": "assistant", "content": answer},
                                 "prompt_eval_count": 100, "eval_count": 20})

            def _send(self, status: int, payload: dict) -> None:
                self.reply(status, json.dumps(payload).encode())

        self.local = LocalServer(Handler)
        self.url = self.local.url

    @property
    def prompts(self) -> list[str]:
        return [m["content"] for r in self.requests for m in r["messages"]]

    def close(self) -> None:
        self.local.close()
