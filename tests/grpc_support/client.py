"""A gRPC test client (grpcio, raw bytes) for tests/grpc_e2e.rs.

  client.py TARGET KIND ARG [TIMEOUT_S]
KIND: unary (ARG = the request), server_stream (ARG = "N:MS"),
client_stream (ARG = comma-separated messages), bidi (ARG = comma-separated).
Prints one JSON line: {"code", "details", "responses", "trailers"}; with
server_stream, also {"got": MESSAGE} per message as it arrives (flushed).
With DROVER_GRPC_CA (a PEM file) it speaks TLS, verifying the name
DROVER_GRPC_NAME (default localhost).
"""
import json
import os
import sys

import grpc


def main():
    target, kind, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    ca = os.environ.get("DROVER_GRPC_CA")
    if ca:
        with open(ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        name = os.environ.get("DROVER_GRPC_NAME", "localhost")
        channel = grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", name),))
    else:
        channel = grpc.insecure_channel(target)
    responses = []
    out = {"responses": responses}
    try:
        if kind == "unary":
            call = channel.unary_unary("/test.Echo/Unary")
            resp, c = call.with_call(arg.encode(), timeout=timeout)
            responses.append(resp.decode())
        elif kind == "server_stream":
            c = channel.unary_stream("/test.Echo/ServerStream")(arg.encode(), timeout=timeout)
            for m in c:
                responses.append(m.decode())
                print(json.dumps({"got": m.decode()}), flush=True)
        elif kind == "client_stream":
            call = channel.stream_unary("/test.Echo/ClientStream")
            msgs = [m.encode() for m in arg.split(",")]
            resp, c = call.with_call(iter(msgs), timeout=timeout)
            responses.append(resp.decode())
        elif kind == "bidi":
            msgs = [m.encode() for m in arg.split(",")]
            c = channel.stream_stream("/test.Echo/Bidi")(iter(msgs), timeout=timeout)
            for m in c:
                responses.append(m.decode())
        else:
            raise SystemExit(f"unknown kind {kind}")
        out["code"] = c.code().name
        out["details"] = c.details()
        out["trailers"] = dict(c.trailing_metadata() or ())
    except grpc.RpcError as e:
        out["code"] = e.code().name
        out["details"] = e.details()
        out["trailers"] = dict(e.trailing_metadata() or ())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
