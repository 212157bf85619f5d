//! Calendar arithmetic on Unix times (UTC), without a date crate.

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// 00:00 UTC on the first day of the month of `ts` (Unix seconds).
pub fn month_start(ts: i64) -> i64 {
    let days = ts.div_euclid(86_400);
    let (_, _, d) = civil_from_days(days);
    (days - (d - 1)) * 86_400
}

/// Unix seconds as RFC 3339 in UTC (`2019-03-05T21:22:54Z`), as Go marshals `time.Time`.
pub fn rfc3339(ts: i64) -> String {
    String::from(&*Rfc3339(ts).text())
}

/// A time in seconds written as [`rfc3339`] writes it, from a buffer on the stack: for
/// answers serialized field by field, with no string made for it.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub i64);

impl Rfc3339 {
    fn text(self) -> RfcText {
        RfcText(rfc3339_bytes(self.0))
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// [`rfc3339_bytes`] as text.
struct RfcText([u8; 20]);

impl std::ops::Deref for RfcText {
    type Target = str;

    fn deref(&self) -> &str {
        // Always ASCII digits and separators.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn rfc3339_bytes(ts: i64) -> [u8; 20] {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Hot path (every user listing): digits by hand into a fixed layout, no formatting
    // machinery and no pushing of characters one by one.
    let mut b = *b"0000-00-00T00:00:00Z";
    let y = y.clamp(0, 9999);
    for (at, n) in [
        (0, y / 100),
        (2, y % 100),
        (5, m),
        (8, d),
        (11, secs / 3600),
        (14, secs % 3600 / 60),
        (17, secs % 60),
    ] {
        b[at] = b'0' + (n / 10 % 10) as u8;
        b[at + 1] = b'0' + (n % 10) as u8;
    }
    b
}

/// RFC 3339 with milliseconds, UTC: `2026-12-02T02:00:00.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let mut out = rfc3339(ms.div_euclid(1000));
    out.pop();
    out.push_str(&format!(".{:03}Z", ms.rem_euclid(1000)));
    out
}

/// Parses `2026-12-02T02:00:00Z` or with fractional seconds and an offset (`+01:00`) to
/// Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm, the inverse of civil_from_days).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) - offset) * 1000 + ms)
}

#[cfg(test)]
mod rfc3339_tests {
    use super::*;

    #[test]
    fn seconds_are_written_as_formatting_would() {
        for ts in [
            0_i64,
            59,
            86_399,
            951_782_400,
            1_764_640_800,
            1_551_820_974,
            4_102_444_799,
            253_402_300_799,
        ] {
            let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
            let s = ts.rem_euclid(86_400);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                s / 3600,
                s % 3600 / 60,
                s % 60
            );
            assert_eq!(rfc3339(ts), want, "{ts}");
        }
    }

    #[test]
    fn milliseconds_round_trip() {
        for ms in [0, 1_764_640_800_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            parse_rfc3339_ms("2026-12-02T03:00:00+01:00"),
            parse_rfc3339_ms("2026-12-02T02:00:00Z")
        );
        for bad in [
            "",
            "2026-12-02",
            "2026-13-01T00:00:00Z",
            "2026-12-02T00:00:00",
            "x026-12-02T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2019-03-05T21:22:54Z -> 2019-03-01T00:00:00Z
        assert_eq!(month_start(1_551_820_974), 1_551_398_400);
        assert_eq!(month_start(1_551_398_400), 1_551_398_400);
    }
}

/// Where time comes from. Services hold an `Arc<dyn Clock>`; production uses
/// [`SystemClock`], tests a [`ManualClock`] they move forward instead of sleeping.
pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Unix seconds.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_now_ms()
    }
}

/// Milliseconds on the coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`): the same clock
/// as [`std::time::Instant`], read without the timestamp counter (a few nanoseconds
/// against about 25), at the resolution of a scheduler tick (1 to 10 ms) and up to one
/// tick behind. For leases and idle deadlines of a second or more that every request
/// reads or moves.
#[cfg(target_os = "linux")]
pub fn coarse_monotonic_ms() -> u64 {
    clock_ms(rustix::time::ClockId::MonotonicCoarse)
}

/// Milliseconds on one of the system's clocks.
#[cfg(target_os = "linux")]
pub(crate) fn clock_ms(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let ms = u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(ms)
}

/// [`coarse_monotonic_ms`] where there is no coarse clock: [`std::time::Instant`]'s,
/// counted from the first read.
#[cfg(not(target_os = "linux"))]
pub fn coarse_monotonic_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = EPOCH.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Unix milliseconds from the operating system (for code outside the services, such as
/// CLI commands; services use their [`Clock`]).
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds from the operating system.
pub fn system_now() -> i64 {
    system_now_ms().div_euclid(1000)
}

/// A clock tests move: the real time plus an offset that `advance` adds to, so time still
/// flows (tokens made by real tools at the real time stay valid) and a test jumps hours
/// ahead instead of sleeping.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl ManualClock {
    /// Starts at the real time.
    pub fn starting_now() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock back, as an operator or NTP may move a system clock.
    pub fn set_back(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_sub(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        system_now_ms().saturating_add(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }
}
