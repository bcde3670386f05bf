//! Calendar arithmetic and clocks. The calendar functions are pure and exact for the
//! proleptic Gregorian calendar, so parsers need no date library on the hot path.

pub const NANOS_PER_SEC: i64 = 1_000_000_000;
pub const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (month 1–12, day 1–31).
#[inline]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// Days since the epoch of a timestamp in ns (UTC): the `log_date` partition value.
pub fn day_of(timestamp_ns: i64) -> i32 {
    timestamp_ns.div_euclid(NANOS_PER_SEC * SECS_PER_DAY) as i32
}

/// `YYYY-MM-DD` of a day count, as it appears in partition paths.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * NANOS_PER_SEC + ts.tv_nsec
}

/// Wall-clock time now, ns since the Unix epoch.
pub fn now_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Wall-clock time of boot, ns since the Unix epoch: what kmsg's and eBPF's boot-relative
/// timestamps are offset by. Uses CLOCK_BOOTTIME, as dmesg does, so time spent suspended
/// counts.
pub fn boot_unix_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

/// The host's current offset of local time from UTC, in seconds.
pub fn local_utc_offset_secs() -> i32 {
    // SAFETY: localtime_r writes into `tm`; `t` is a valid time_t.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

/// Parses a UTC offset as written in RFC 3339 and by `date +%z`: `Z`, `+02:00`, `-0530`,
/// `+2`. Returns seconds east of UTC.
pub fn parse_utc_offset(s: &str) -> Result<i32, String> {
    let bad = || format!("invalid UTC offset {s:?}: expected Z, +HH:MM, -HHMM or +H");
    if s == "Z" || s == "z" {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let all_digits =
        |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            format_date(days_from_civil(2024, 2, 29) as i32),
            "2024-02-29"
        );
    }

    #[test]
    fn utc_offsets_parse_in_the_usual_spellings() {
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        assert_eq!(parse_utc_offset("+02:00"), Ok(7200));
        assert_eq!(parse_utc_offset("-0530"), Ok(-19_800));
        assert_eq!(parse_utc_offset("+2"), Ok(7200));
        for bad in ["", "2", "+", "+24:00", "+01:60", "+1:2:3", "CET", "+0a"] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_of_negative_timestamps_rounds_down() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(NANOS_PER_SEC * SECS_PER_DAY), 1);
    }
}
