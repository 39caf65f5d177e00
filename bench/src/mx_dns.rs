//! `mx-dns`: the DNS a relay benchmark needs — for `--domains N`
//! destinations `d1.bench` … `dN.bench`, an MX record naming
//! `mx.dI.bench` and an A record for it at `--base` + I (127.0.1.I by
//! default), where an SMTP sink listens; and, from `--txt-file`, TXT
//! records (SPF, DKIM, DMARC of a sending domain, for the inbound-checks
//! benchmark). UDP on loopback only; anything else is NXDOMAIN. Prints
//! `mx-dns ready on ADDR` once it answers.

use anyhow::{bail, Context, Result};
use clap::Parser;
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

#[derive(Parser)]
#[command(
    name = "mx-dns",
    about = "MX and A records for benchmark destinations d1.bench … dN.bench"
)]
struct Args {
    /// Where to answer (loopback only)
    #[arg(long, default_value = "127.0.0.1:5353")]
    listen: SocketAddr,
    /// How many destination domains
    #[arg(long, default_value_t = 4)]
    domains: u8,
    /// The sink of d1.bench; dI.bench's is this plus I - 1
    #[arg(long, default_value = "127.0.1.1")]
    base: Ipv4Addr,
    /// Also `dead.bench`, whose MX is at this address (a dead destination)
    #[arg(long)]
    dead: Option<Ipv4Addr>,
    /// TXT records, one `NAME<TAB>VALUE` a line
    #[arg(long)]
    txt_file: Option<std::path::PathBuf>,
}

/// The TXT records of `--txt-file`, by lower-case name.
fn txt_records(args: &Args) -> Result<Vec<(String, String)>> {
    let Some(path) = &args.txt_file else {
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, v)| {
            (
                n.trim().trim_end_matches('.').to_ascii_lowercase(),
                v.trim().to_string(),
            )
        })
        .collect())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        bail!("mx-dns answers on loopback only");
    }
    let socket =
        UdpSocket::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    let txt = txt_records(&args)?;
    println!("mx-dns ready on {}", socket.local_addr()?);
    let mut buf = [0u8; 4096];
    loop {
        let (n, peer) = socket.recv_from(&mut buf)?;
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Ok(bytes) = answer(&args, &txt, &query).to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

/// The sink address of `domain` (`dI.bench` or `dead.bench`), if it is one.
fn sink_of(args: &Args, domain: &str) -> Option<Ipv4Addr> {
    if domain == "dead.bench" {
        return args.dead;
    }
    let i: u8 = domain
        .strip_prefix('d')?
        .strip_suffix(".bench")?
        .parse()
        .ok()?;
    if i == 0 || i > args.domains {
        return None;
    }
    Some(Ipv4Addr::from(u32::from(args.base) + u32::from(i) - 1))
}

fn answer(args: &Args, txt: &[(String, String)], query: &Message) -> Message {
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
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let texts: Vec<&String> = txt
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect();
    if !texts.is_empty() {
        if q.query_type() == RecordType::TXT {
            for value in texts {
                // Character-strings of at most 255 bytes (RFC 1035 §3.3.14).
                let strings = value
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                response.add_answer(Record::from_rdata(
                    q.name().clone(),
                    300,
                    RData::TXT(TXT::new(strings)),
                ));
            }
        }
        return response; // other types: NODATA
    }
    let (domain, is_mx_host) = match name.strip_prefix("mx.") {
        Some(d) => (d.to_string(), true),
        None => (name.clone(), false),
    };
    let Some(sink) = sink_of(args, &domain) else {
        response.metadata.response_code = ResponseCode::NXDomain;
        return response;
    };
    let owner = q.name().clone();
    match (q.query_type(), is_mx_host) {
        (RecordType::MX, false) => {
            if let Ok(host) = Name::from_ascii(format!("mx.{domain}.")) {
                response.add_answer(Record::from_rdata(owner, 300, RData::MX(MX::new(10, host))));
            }
        }
        (RecordType::A, true) => {
            response.add_answer(Record::from_rdata(owner, 300, RData::A(A(sink))));
        }
        _ => {} // NODATA
    }
    response
}
