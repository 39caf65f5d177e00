//! The Date header field (RFC 5322 §3.3), with the obsolete forms of §4.3
//! that old and odd mailers still write: two- and three-digit years, named
//! zones (`EST`, `GMT`, military letters), no seconds, comments.
//!
//! mail-parser reads the modern form; this is the fallback where it gives
//! up, and what SENTON/SENTBEFORE/SENTSINCE use: they compare the date as
//! written, disregarding time and timezone (RFC 9051 §6.4.4).

/// A Date as written: the calendar day and time in the writer's zone, and
/// that zone's offset from UTC in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub offset_minutes: i32,
}

impl WrittenDate {
    /// Seconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400 + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
            - i64::from(self.offset_minutes) * 60
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses a Date field's value, or `None` when it is no date.
pub fn parse_date(value: &str) -> Option<WrittenDate> {
    // Comments go (`+0200 (EET)`), then the optional day of the week.
    let mut text = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => text.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let mut words = text.split_whitespace().peekable();
    if words
        .peek()
        .is_some_and(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
    {
        words.next();
    }
    let day: u32 = words.next()?.parse().ok()?;
    let month_word = words.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| month_word.starts_with(m))? as u32 + 1;
    let year_word = words.next()?;
    let year: i32 = year_word
        .parse()
        .ok()
        .filter(|y: &i32| (0..=9999).contains(y))?;
    // RFC 5322 §4.3: two digits are 1950–2049; three add 1900.
    let year = match year_word.len() {
        1 | 2 if year < 50 => year + 2000,
        1 | 2 => year + 1900,
        3 => year + 1900,
        _ => year,
    };
    let mut time = words.next()?.split(':');
    let hour: u32 = time.next()?.parse().ok()?;
    let minute: u32 = time.next()?.parse().ok()?;
    let second: u32 = match time.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    let offset_minutes = words.next().map_or(Some(0), zone)?;
    let valid = (1..=31).contains(&day) && hour < 24 && minute < 60 && second <= 60;
    valid.then_some(WrittenDate {
        year,
        month,
        day,
        hour,
        minute,
        second,
        offset_minutes,
    })
}

/// A zone: `+hhmm`/`-hhmm`, or an obsolete name (RFC 5322 §4.3; military
/// letters other than Z mean nothing certain and count as +0000).
fn zone(word: &str) -> Option<i32> {
    if let Some(sign) = word.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits = &word[1..];
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i32 = digits.parse().ok()?;
        let minutes = n / 100 * 60 + n % 100;
        return Some(if sign == '-' { -minutes } else { minutes });
    }
    let hours = match word.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        w if w.len() == 1 && w.chars().all(|c| c.is_ascii_alphabetic()) => 0,
        _ => return None,
    };
    Some(hours * 60)
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian,
/// Howard Hinnant's algorithm), in i64 throughout.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_and_obsolete_dates() {
        let d = parse_date("Thu, 5 Nov 2026 09:00:00 +0200 (EET)").unwrap();
        assert_eq!((d.year, d.month, d.day, d.hour), (2026, 11, 5, 9));
        assert_eq!(d.offset_minutes, 120);
        assert_eq!(d.timestamp(), 1_793_862_000);
        let d = parse_date("Sat, 31 Oct 26 23:00 EST").unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.second),
            (2026, 10, 31, 23, 0)
        );
        assert_eq!(d.offset_minutes, -300);
        let d = parse_date("5 Nov 2026 23:59:59 -1200").unwrap();
        assert_eq!((d.day, d.offset_minutes), (5, -720));
        assert_eq!(parse_date("1 Jan 99 00:00 GMT").unwrap().year, 1999);
        assert_eq!(parse_date("1 Jan 103 00:00 GMT").unwrap().year, 2003);
        for bad in [
            "",
            "yesterday",
            "32 Jan 2026 10:00 +0000",
            "1 Foo 2026 10:00",
            "1 Jan 2026 25:00",
            "1 Jan -2147483648 00:00 +0000",
            "1 Jan 99999 00:00 +0000",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
