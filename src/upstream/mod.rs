//! The upstream client: connecting to members, keep-alive HTTP/1.1
//! connections ([`http1`], per worker thread), shared HTTP/2 connections
//! ([`http2`]), drover's own HTTP/1.1 client for the common exchange
//! ([`native`]), TLS to backends ([`tls`]), the request body sent upstream
//! ([`body`]) and the response body from either client ([`response`]).
//!
//! A leaf below both of its users: the proxy forwards requests over it and
//! the health checks probe members with it; neither uses the other. It knows
//! nothing of routes or pools beyond a member's address and its TLS client.

pub mod body;
pub mod client_in;
pub mod client_in_h2;
pub mod h2_client;
pub mod http1;
pub mod http2;
pub mod idle;
pub mod maps;
pub mod names;
pub mod native;
pub mod response;
pub mod tls;

use http::HeaderName;

/// gRPC's status trailer (or header, in a trailers-only response): written
/// by the proxy on the answers it makes itself, read by gRPC health checks.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// gRPC's status message trailer, beside [`GRPC_STATUS`].
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
