"""A gRPC test server (grpcio, generic handlers: no protoc) for tests/grpc_e2e.rs.

Service test.Echo, messages are raw bytes:
  Unary(b"sleep:MS") answers after MS ms; Unary(b"deadline") answers
  NAME + b":deadline:" + the call's remaining time in ms as the server saw it
  on arrival (from the grpc-timeout it received; "none" without one); Unary(b"fail:CODE:MSG") aborts with
  that status, Unary(b"fail_on:NAME:CODE:MSG") only on the server named NAME; any other Unary(x) answers NAME + b":" + x. Every answer carries
  trailing metadata x-trailer: NAME.
  ServerStream(b"N:MS") sends N messages b"NAME:I", one every MS ms.
  ClientStream(...) answers NAME + b":" + the count and total length of the messages.
  Bidi(...) echoes each message as NAME + b":" + message.
grpc.health.v1.Health is served; a line SERVING or NOT_SERVING on stdin sets
the status of the server ("") and of "test.Echo".
Prints {"listening": PORT} on start and {"call": METHOD} for each call (flushed).
With DROVER_GRPC_TLS_CERT and DROVER_GRPC_TLS_KEY (PEM files) it serves TLS.
"""
import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

NAME = sys.argv[1].encode()


def say(obj):
    print(json.dumps(obj), flush=True)


def unary(request, context):
    say({"call": "Unary"})
    context.set_trailing_metadata((("x-trailer", NAME.decode()),))
    if request == b"deadline":
        left = context.time_remaining()
        return NAME + b":deadline:" + (b"none" if left is None else str(int(left * 1000)).encode())
    if request.startswith(b"sleep:"):
        time.sleep(int(request[6:]) / 1000)
    if request.startswith(b"fail:"):
        _, code, msg = request.split(b":", 2)
        context.abort(grpc.StatusCode[code.decode()], msg.decode())
    if request.startswith(b"fail_on:"):
        _, name, code, msg = request.split(b":", 3)
        if name == NAME:
            context.abort(grpc.StatusCode[code.decode()], msg.decode())
    return NAME + b":" + request


def server_stream(request, context):
    say({"call": "ServerStream"})
    context.set_trailing_metadata((("x-trailer", NAME.decode()),))
    n, ms = (int(x) for x in request.split(b":"))
    for i in range(n):
        if i:
            time.sleep(ms / 1000)
        yield NAME + b":" + str(i).encode()


def client_stream(request_iterator, context):
    say({"call": "ClientStream"})
    context.set_trailing_metadata((("x-trailer", NAME.decode()),))
    count = total = 0
    for m in request_iterator:
        count += 1
        total += len(m)
    return NAME + b":" + f"{count}/{total}".encode()


def bidi(request_iterator, context):
    say({"call": "Bidi"})
    context.set_trailing_metadata((("x-trailer", NAME.decode()),))
    for m in request_iterator:
        yield NAME + b":" + m


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    serving = health_pb2.HealthCheckResponse.SERVING
    for svc in ("", "test.Echo"):
        health_servicer.set(svc, serving)
    cert, key = os.environ.get("DROVER_GRPC_TLS_CERT"), os.environ.get("DROVER_GRPC_TLS_KEY")
    if cert and key:
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say({"listening": port})

    def control():
        for line in sys.stdin:
            status = getattr(health_pb2.HealthCheckResponse, line.strip(), None)
            if status is not None:
                for svc in ("", "test.Echo"):
                    health_servicer.set(svc, status)
                say({"health": line.strip()})

    threading.Thread(target=control, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
