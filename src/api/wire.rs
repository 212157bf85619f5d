//! Small helpers shared by the wire types: Go-style RFC 3339 times and Grafana's age strings.

/// Unix seconds as RFC 3339 in UTC (`2019-03-05T21:22:54Z`), as Go marshals `time.Time`.
pub fn rfc3339(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Grafana's `GetAgeString`: "< 1 minute", "5m", "3h", "2d", "4M", "10y".
pub fn age(ts: i64, now: i64) -> String {
    let secs = (now - ts).max(0);
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let months = days / 30;
    let years = days / 365;
    let (n, unit) = if years > 0 {
        (years, "y")
    } else if months > 0 {
        (months, "M")
    } else if days > 0 {
        (days, "d")
    } else if hours > 0 {
        (hours, "h")
    } else if minutes > 0 {
        (minutes, "m")
    } else {
        return "< 1 minute".to_string();
    };
    format!("{n}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_551_820_974), "2019-03-05T21:22:54Z");
        assert_eq!(age(0, 30), "< 1 minute");
        assert_eq!(age(0, 10 * 365 * 86_400), "10y");
    }
}
