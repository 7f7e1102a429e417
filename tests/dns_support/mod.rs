//! A real authoritative DNS server for the tests (hickory-server), on
//! 127.0.0.1 UDP and TCP, serving one zone whose A records the test rewrites.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

/// TTL of the answers: 1 s (drover re-resolves at the TTL).
pub const TTL: u32 = 1;

/// A running DNS server for `zone`.
pub struct TestDns {
    pub addr: SocketAddr,
    zone: Name,
    handler: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    server: Server<Catalog>,
}

impl TestDns {
    /// Serves `zone` (e.g. `"test."`) on a free 127.0.0.1 port, UDP and TCP.
    pub async fn start(zone: &str) -> TestDns {
        let zone = Name::from_str(zone).unwrap();
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            zone.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = SOA::new(
            Name::from_str("ns").unwrap().append_domain(&zone).unwrap(),
            Name::from_str("admin")
                .unwrap()
                .append_domain(&zone)
                .unwrap(),
            1,
            60,
            60,
            60,
            TTL,
        );
        assert!(handler.upsert_mut(Record::from_rdata(zone.clone(), TTL, RData::SOA(soa)), 1));
        let handler = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&zone),
            vec![handler.clone() as Arc<dyn ZoneHandler>],
        );
        let mut server = Server::new(catalog);
        // One port for both: bind UDP first, then TCP on the same port (retry on a clash).
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        TestDns {
            addr,
            zone,
            handler,
            server,
        }
    }

    /// Makes `host` (relative to the zone) answer exactly `ips` (none: NXDOMAIN-free empty answer).
    pub async fn answer(&self, host: &str, ips: &[Ipv4Addr]) {
        let name = Name::from_str(host)
            .unwrap()
            .append_domain(&self.zone)
            .unwrap();
        let key = RrKey::new(LowerName::new(&name), RecordType::A);
        let mut set = RecordSet::new(name.clone(), RecordType::A, 1);
        for ip in ips {
            set.insert(Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))), 1);
        }
        let mut records = self.handler.records_mut().await;
        if ips.is_empty() {
            records.remove(&key);
        } else {
            records.insert(key, Arc::new(set));
        }
    }

    /// Stops answering (the sockets close).
    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}
