//! What the envelope carries on to the next hop: the submitter's DSN
//! parameters as xtext (RFC 3461 §4), and the `TLS-Required: No` header
//! field (RFC 8689 §5).

use tern_store::Outbound;

/// Whether the header says `TLS-Required: No` (RFC 8689 §5): the sender
/// prefers delivery to the domain's TLS policies (DANE, MTA-STS).
pub(super) fn tls_required_no(message: &[u8]) -> bool {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    message[..end].split(|b| *b == b'\n').any(|line| {
        line.len() >= 13
            && line[..13].eq_ignore_ascii_case(b"tls-required:")
            && String::from_utf8_lossy(&line[13..])
                .trim()
                .eq_ignore_ascii_case("no")
    })
}

/// MAIL parameters passing the submitter's DSN wishes on (RFC 3461 §4.3,
/// §4.4); sent only to a peer offering DSN.
pub(super) fn dsn_mail_params(outbound: &Outbound) -> Vec<String> {
    let mut params = Vec::new();
    if let Some(ret) = outbound.ret {
        params.push(match ret {
            tern_store::DsnReturn::Full => "RET=FULL".to_string(),
            tern_store::DsnReturn::Headers => "RET=HDRS".to_string(),
        });
    }
    if let Some(id) = &outbound.env_id {
        params.push(format!("ENVID={}", xtext(id)));
    }
    params
}

/// RCPT parameters for `address` (RFC 3461 §4.1, §4.2).
pub(super) fn dsn_rcpt_params(outbound: &Outbound, address: &str) -> Vec<String> {
    let Some(r) = outbound
        .recipients
        .iter()
        .find(|r| r.address.eq_ignore_ascii_case(address))
    else {
        return Vec::new();
    };
    let n = r.notify;
    let notify = if !(n.success || n.failure || n.delay) {
        "NEVER".to_string()
    } else {
        [
            (n.success, "SUCCESS"),
            (n.failure, "FAILURE"),
            (n.delay, "DELAY"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    };
    let mut params = vec![format!("NOTIFY={notify}")];
    if let Some(orcpt) = &r.orcpt {
        match orcpt.split_once(';') {
            Some((kind, addr)) => params.push(format!("ORCPT={kind};{}", xtext(addr))),
            None => params.push(format!("ORCPT=rfc822;{}", xtext(orcpt))),
        }
    }
    params
}

/// xtext (RFC 3461 §4): `+`, `=`, controls and non-ASCII as `+HH`.
pub(super) fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}
