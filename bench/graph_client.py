"""CPU per Graph API call for each HTTP stack the client could use (issue 13: one stack, chosen by
measurement): `requests`, urllib3, and the standard library's http.client, which chatbot/whatsapp/
graph.py uses, each sending the same message to the fake Graph API in its own process.

    .venv/bin/python bench/graph_client.py [--calls 4000]

Prints, per stack, the CPU time of this process per call (the worker's cost of a send, apart
from the database) and the calls per second of one thread.
"""

import argparse
import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import server_env, setup_django  # noqa: E402
from bench.outbound import TOKEN, fake_graph  # noqa: E402

PNID = "106540352242922"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def message(index):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+5511987654321",
            "type": "text", "text": {"body": f"Olá! Pedido {index} saiu para entrega."},
            "biz_opaque_callback_data": f"hoz:{index}"}


def stacks(base):
    import requests
    import urllib3

    url = f"{base}/v25.0/{PNID}/messages"
    session = requests.Session()
    session.trust_env = False
    pool = urllib3.PoolManager()
    timeout = urllib3.Timeout(connect=3.05, read=20)
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3.05)

    def with_http_client(index):
        conn.request("POST", urlsplit(url).path, body=json.dumps(message(index)).encode(), headers=HEADERS)
        return json.loads(conn.getresponse().read())

    setup_django(server_env("sqlite:////tmp/hoztech-graph-client.sqlite3", WHATSAPP_ACCESS_TOKEN=TOKEN,
                            WHATSAPP_GRAPH_URL=base))
    from chatbot.whatsapp import graph

    return {
        "chatbot graph.send_message (http.client)": lambda index: {"messages": graph.send_message(
            PNID, {key: value for key, value in message(index).items() if key not in ("messaging_product",
                                                                                       "recipient_type")})},
        "requests": lambda index: session.post(url, json=message(index), headers=HEADERS, timeout=(3.05, 20)).json(),
        "urllib3": lambda index: json.loads(pool.request("POST", url, body=json.dumps(message(index)).encode(),
                                                         headers=HEADERS, timeout=timeout, retries=False).data),
        "http.client": with_http_client,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    options = parser.parse_args()
    proc, base = fake_graph()
    try:
        print(f"{options.calls} sends per stack to the fake Graph API at {base}, one thread")
        for name, send in stacks(base).items():
            for index in range(200):  # warm-up: connections, caches
                send(index)
            started, cpu = time.perf_counter(), time.process_time()
            for index in range(options.calls):
                assert "messages" in send(index)
            per_call = 1000 * (time.process_time() - cpu) / options.calls
            rate = options.calls / (time.perf_counter() - started)
            print(f"  {name:42} {per_call:.3f} ms of CPU per call, {rate:,.0f} calls/s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
