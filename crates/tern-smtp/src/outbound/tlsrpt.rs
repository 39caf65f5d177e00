//! TLS reporting data (RFC 8460): how each TLS session to a destination
//! went, under which policy — counted in memory as sessions happen and
//! written to the store in batches (`tern tls-report` shows them), so a
//! report to a domain's `rua` can be built from them.

use std::collections::HashMap;
use std::sync::Mutex;
use tern_store::TlsReportRow;

/// RFC 8460 §4.3 policy types.
pub const STS: &str = "sts";
pub const TLSA: &str = "tlsa";
pub const NO_POLICY: &str = "no-policy-found";

/// A successful session; the failures are RFC 8460 §4.4 result types.
pub const SUCCESS: &str = "success";
pub const STARTTLS_NOT_SUPPORTED: &str = "starttls-not-supported";
pub const CERTIFICATE_HOST_MISMATCH: &str = "certificate-host-mismatch";
pub const CERTIFICATE_EXPIRED: &str = "certificate-expired";
pub const CERTIFICATE_NOT_TRUSTED: &str = "certificate-not-trusted";
pub const TLSA_INVALID: &str = "tlsa-invalid";
pub const VALIDATION_FAILURE: &str = "validation-failure";

type Key = (String, String, &'static str, &'static str, String);

#[derive(Default)]
pub struct TlsReports {
    counts: Mutex<HashMap<Key, u64>>,
}

impl TlsReports {
    /// One session to `mx_host` for `policy_domain`.
    pub fn note(
        &self,
        policy_domain: &str,
        policy_type: &'static str,
        result_type: &'static str,
        mx_host: &str,
    ) {
        let day = day_of(tern_core::time::unix_now());
        if let Ok(mut counts) = self.counts.lock() {
            *counts
                .entry((
                    day,
                    policy_domain.to_ascii_lowercase(),
                    policy_type,
                    result_type,
                    mx_host.to_ascii_lowercase(),
                ))
                .or_default() += 1;
        }
    }

    /// Everything counted since the last call.
    pub fn take(&self) -> Vec<TlsReportRow> {
        let Ok(mut counts) = self.counts.lock() else {
            return Vec::new();
        };
        std::mem::take(&mut *counts)
            .into_iter()
            .map(
                |((day, policy_domain, policy_type, result_type, mx_host), sessions)| {
                    TlsReportRow {
                        day,
                        policy_domain,
                        policy_type: policy_type.to_string(),
                        result_type: result_type.to_string(),
                        mx_host,
                        sessions,
                    }
                },
            )
            .collect()
    }
}

/// The result type of a failed certificate check, from rustls' words.
pub fn certificate_failure(why: &str) -> &'static str {
    if why.contains("NotValidForName") || why.contains("not valid for name") {
        CERTIFICATE_HOST_MISMATCH
    } else if why.contains("Expired") || why.contains("expired") {
        CERTIFICATE_EXPIRED
    } else if why.contains("UnknownIssuer") || why.contains("unknown issuer") {
        CERTIFICATE_NOT_TRUSTED
    } else {
        VALIDATION_FAILURE
    }
}

/// `YYYY-MM-DD` of a unix time, UTC.
pub fn day_of(unix: i64) -> String {
    let (y, m, d) = tern_core::time::civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_per_key_and_taken_once() {
        let r = TlsReports::default();
        r.note("Example.com", STS, SUCCESS, "mx1.example.com");
        r.note("example.com", STS, SUCCESS, "MX1.example.com");
        r.note("example.com", STS, CERTIFICATE_EXPIRED, "mx2.example.com");
        let mut rows = r.take();
        rows.sort_by(|a, b| a.result_type.cmp(&b.result_type));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].result_type, "certificate-expired");
        assert_eq!(
            (rows[1].sessions, rows[1].mx_host.as_str()),
            (2, "mx1.example.com")
        );
        assert!(r.take().is_empty());
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(
            certificate_failure("invalid peer certificate: NotValidForName"),
            CERTIFICATE_HOST_MISMATCH
        );
    }
}
