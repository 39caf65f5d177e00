//! Header fields the server writes: `Return-Path` and `Received` (RFC 5321
//! §4.4) on every message, and `Date` and `Message-ID` (RFC 6409 §8) on
//! submitted messages that lack them.

use std::sync::atomic::{AtomicU64, Ordering};

pub use tern_core::time::unix_now as now;
use tern_core::time::{civil_from_days, MONTHS};

/// RFC 5322 §3.3 date-time in UTC: `Sat, 21 Nov 2026 22:02:00 +0000`.
pub fn rfc5322_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d} {month} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A session or transaction id unique within this server: time and a counter.
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{nanos:x}{:x}{n:x}", std::process::id())
}

/// True when the message's header section has a field called `name`.
pub fn has_header(message: &[u8], name: &str) -> bool {
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
            {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_298_520),
            "Sat, 21 Nov 2026 22:02:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn header_presence_stops_at_the_body() {
        let m = b"Subject: x\r\nmessage-id: <a@b>\r\n\r\nDate: in the body\r\n";
        assert!(has_header(m, "Message-ID"));
        assert!(!has_header(m, "Date"));
        assert!(has_header(b"DATE : x\n\nbody", "date"));
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(new_id(), new_id());
    }
}

/// RFC 3339 UTC (`2026-12-06T12:30:15Z`), JMAP's `UTCDate`.
pub fn utc_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// An RFC 3339 UTC date-time (`Z`, fractions of seconds ignored) as unix
/// seconds.
pub fn parse_utc_date(text: &str) -> Option<i64> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let time = time.split('.').next().unwrap_or(time);
    let h: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), h.as_slice()) else {
        return None;
    };
    if !(1..=12).contains(m) || !(1..=31).contains(day) || *hh > 23 || *mm > 59 || *ss > 60 {
        return None;
    }
    let year = i32::try_from(*y).ok()?;
    let days = tern_store::message::date::days_from_civil(year, *m as u32, *day as u32);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod utc_tests {
    #[test]
    fn utc_dates_both_ways() {
        assert_eq!(super::parse_utc_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            super::parse_utc_date("2026-12-06T12:30:15.5Z"),
            Some(1_796_560_215)
        );
        assert_eq!(super::utc_date(1_796_560_215), "2026-12-06T12:30:15Z");
        assert_eq!(super::parse_utc_date("2026-12-06"), None);
        assert_eq!(super::parse_utc_date("2026-13-06T00:00:00Z"), None);
    }
}
