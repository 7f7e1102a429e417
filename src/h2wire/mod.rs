//! HTTP/2 on the wire, without I/O: frames (RFC 9113 §4, §6) and HPACK
//! (RFC 7541). drover's own HTTP/2 connections (the client-facing one in
//! `proxy::h2`, the upstream one in `upstream::h2_client`, which the
//! health checks use too) are built on it.
//!
//! Everything here reads bytes a peer sent: no slicing or indexing without a
//! bound check, errors instead of panics (fuzz targets `upstream_h2`, `h2_server`,
//! `hpack`).

pub mod frame;
pub mod hpack;
pub mod stream_map;
