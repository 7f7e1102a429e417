//! The key tables of `[server]`, `[server.tls]` and its certificates: see
//! [`super::keys`] for what a key table is for.

use serde_json::json;

use super::keys::{dur, key, keyd, Section, Ty};
use super::sections::MIN_HEADER_BYTES;
use super::types::{Http1Codec, Http2Codec};

pub(crate) static SERVER: Section = Section {
    title: "[server]",
    doc: "Client-facing listeners and limits.",
    keys: &[
        keyd(
            "listen",
            Ty::AddrList,
            "Plain HTTP/1.1 and h2c listen addresses.",
            |c| {
                json!(c
                    .server
                    .listen
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>())
            },
        ),
        keyd(
            "shutdown_timeout",
            Ty::Duration,
            "On SIGINT/SIGTERM: how long in-flight requests may finish.",
            |c| dur(c.server.shutdown_timeout),
        ),
        keyd(
            "max_header_bytes",
            Ty::Uint(MIN_HEADER_BYTES as u64),
            "Larger request heads get 431 (bytes, at least 8192).",
            |c| json!(c.server.max_header_bytes),
        ),
        keyd(
            "header_read_timeout",
            Ty::Duration,
            "A client slower than this to send its request head is cut off.",
            |c| dur(c.server.header_read_timeout),
        ),
        keyd(
            "idle_timeout",
            Ty::Duration,
            "Idle keep-alive client connections are closed after this.",
            |c| dur(c.server.idle_timeout),
        ),
        keyd(
            "max_connections",
            Ty::Uint(0),
            "Client connections at once; 0 = derived from the open-file limit.",
            |c| json!(c.server.max_connections),
        ),
        keyd(
            "tunnel_idle_timeout",
            Ty::Duration,
            "Upgraded (WebSocket) connections idle both ways this long are closed.",
            |c| dur(c.server.tunnel_idle_timeout),
        ),
        keyd(
            "body_read_timeout",
            Ty::Duration,
            "Longest pause in a client's request body, else 408.",
            |c| dur(c.server.body_read_timeout),
        ),
        keyd(
            "threads",
            Ty::Uint(0),
            "Worker threads; 0 = one per core.",
            |c| json!(c.server.threads),
        ),
        keyd(
            "https_redirect",
            Ty::Bool,
            "Answer every plain-HTTP request with a 308 to https (the TLS listener's port).",
            |c| json!(c.server.https_redirect),
        ),
        keyd(
            "max_connections_per_client",
            Ty::Uint(0),
            "Connections one client IP may hold at once; excess ones are closed at accept. 0 = no limit.",
            |c| json!(c.server.max_connections_per_client),
        ),
        keyd(
            "http1_codec",
            Ty::Choice(Http1Codec::names),
            "HTTP/1 codec: \"native\" (drover's own, on plain listeners and for bodiless requests to plain HTTP/1.1 members; what it does not handle goes to hyper) or \"hyper\" (the kill switch). Listeners read at start.",
            |c| json!(c.server.http1_codec.as_str()),
        ),
        keyd(
            "http2_codec",
            Ty::Choice(Http2Codec::names),
            "HTTP/2 server for client connections (h2c prior knowledge on plain listeners, ALPN h2 on TLS): \"native\" (drover's own) or \"hyper\" (the kill switch). Read at start.",
            |c| json!(c.server.http2_codec.as_str()),
        ),
        key(
            "tls",
            Ty::Table(&SERVER_TLS),
            "An optional TLS listener (rustls), ALPN h2 + http/1.1.",
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static SERVER_TLS: Section = Section {
    title: "[server.tls]",
    doc: "An optional TLS listener (rustls), ALPN h2 + http/1.1.",
    keys: &[
        key(
            "listen",
            Ty::AddrList,
            "TLS listen addresses, like [\"0.0.0.0:8443\"].",
        ),
        key(
            "certs",
            Ty::Tables(&CERT),
            "Certificate chains and keys; several = SNI (the first is the default).",
        ),
    ],
    required: &["listen", "certs"],
    required_any: &[],
};

pub(crate) static CERT: Section = Section {
    title: "{ cert, key }",
    doc: "A PEM certificate chain and its key; paths relative to the config file.",
    keys: &[
        key("cert", Ty::NonEmpty, "PEM certificate chain file."),
        key("key", Ty::NonEmpty, "PEM private key file."),
    ],
    required: &["cert", "key"],
    required_any: &[],
};
