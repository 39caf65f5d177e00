//! A small authoritative-and-recursive-looking DNS server for the outbound
//! tests: UDP on loopback, answers from a table the test fills (MX, A,
//! AAAA, TXT, TLSA, CNAME), NXDOMAIN for unknown names, NODATA for known
//! names without the asked type. Records marked secure are answered with
//! the AD bit, as a validating resolver would (RFC 4035 §3.2.3), so DANE
//! can be exercised without signing a zone.

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME, MX, TLSA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Entry {
    name: String,
    data: RData,
    secure: bool,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Vec<Entry>>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(n: &str) -> Name {
    Name::from_ascii(format!("{}.", n.trim_end_matches('.'))).expect("test DNS name")
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind test DNS");
        let addr = socket.local_addr().unwrap();
        let zone: Arc<Mutex<Vec<Entry>>> = Arc::default();
        let table = zone.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answer = respond(&query, &table.lock().unwrap());
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
        });
        DnsServer { addr, zone }
    }

    fn add(&self, owner: &str, data: RData, secure: bool) {
        self.zone.lock().unwrap().push(Entry {
            name: key(owner),
            data,
            secure,
        });
    }

    pub fn mx(&self, domain: &str, preference: u16, host: &str) {
        self.add(domain, RData::MX(MX::new(preference, name(host))), false);
    }

    pub fn secure_mx(&self, domain: &str, preference: u16, host: &str) {
        self.add(domain, RData::MX(MX::new(preference, name(host))), true);
    }

    /// RFC 7505: "no mail here".
    pub fn null_mx(&self, domain: &str) {
        self.add(domain, RData::MX(MX::new(0, Name::root())), false);
    }

    pub fn a(&self, host: &str, ip: Ipv4Addr) {
        self.add(host, RData::A(A(ip)), false);
    }

    pub fn cname(&self, alias: &str, target: &str) {
        self.add(alias, RData::CNAME(CNAME(name(target))), false);
    }

    /// A TXT record; text longer than 255 bytes (an RSA DKIM key) is
    /// split into several character-strings, as zone files do.
    pub fn txt(&self, owner: &str, text: &str) {
        let strings = text
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(owner, RData::TXT(TXT::new(strings)), false);
    }

    pub fn secure_tlsa(&self, owner: &str, usage: u8, selector: u8, matching: u8, data: Vec<u8>) {
        let tlsa = TLSA::new(usage.into(), selector.into(), matching.into(), data);
        self.add(owner, RData::TLSA(tlsa), true);
    }
}

fn respond(query: &Message, zone: &[Entry]) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        response.set_edns(edns);
    }
    let Some(q) = query.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(q.clone());
    let mut owner = key(&q.name().to_ascii());
    let mut secure = true;
    // Follow CNAMEs (a few steps), as a recursive resolver does.
    for _ in 0..8 {
        let here: Vec<&Entry> = zone.iter().filter(|e| e.name == owner).collect();
        if here.is_empty() {
            if response.answers.is_empty() {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            return response;
        }
        let wanted: Vec<&&Entry> = here
            .iter()
            .filter(|e| e.data.record_type() == q.query_type())
            .collect();
        if !wanted.is_empty() {
            for e in wanted {
                secure &= e.secure;
                response.add_answer(Record::from_rdata(name(&owner), 60, e.data.clone()));
            }
            response.metadata.authentic_data = secure
                && (query.metadata.authentic_data
                    || query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
            return response;
        }
        let Some(alias) = here
            .iter()
            .find(|e| e.data.record_type() == RecordType::CNAME)
        else {
            return response; // NODATA
        };
        response.add_answer(Record::from_rdata(name(&owner), 60, alias.data.clone()));
        secure = false;
        if let RData::CNAME(target) = &alias.data {
            owner = key(&target.0.to_ascii());
        }
    }
    response
}
