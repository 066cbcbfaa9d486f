//! Durations written as in systemd (`systemd.time(7)`): `200ms`, `1s`, `1.5s`, `2min`,
//! `1min 30s`; a bare number means seconds.

use std::time::Duration;

/// Parses a systemd-style duration.
///
/// Units: `us`/`usec`, `ms`/`msec`, `s`/`sec`/`second(s)`, `m`/`min`/`minute(s)`,
/// `h`/`hr`/`hour(s)`, `d`/`day(s)`. Several parts add up (`1min 30s`, `1s500ms`). A bare
/// number is seconds, as in systemd. Negative values, NaN and overflow are errors.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration (expected e.g. 200ms, 1s, 1.5s)".into());
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: expected a number at {rest:?} (e.g. 200ms, 1s, 1.5s)"
            ));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "us" | "usec" | "µs" => 1_000,
            "ms" | "msec" => 1_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} (use us, ms, s, min, h or d)"
                ));
            }
        };
        total_ns = total_ns
            .checked_add(part_ns(number, unit_ns).ok_or_else(|| format!("invalid duration {s:?}"))?)
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total_ns / 1_000_000_000)
        .map_err(|_| format!("duration {s:?} is too large"))?;
    // The remainder is below 10^9 and therefore fits in u32.
    let nanos = u32::try_from(total_ns % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one '.') times `unit_ns`, exactly, in nanoseconds.
fn part_ns(number: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ns = int_value.checked_mul(unit_ns)?;
    // Fractional digits beyond nanosecond precision are dropped.
    let mut scale = unit_ns;
    for digit in frac.chars().take(30) {
        scale /= 10;
        let d = u128::from(digit.to_digit(10)?);
        ns = ns.checked_add(d * scale)?;
    }
    Some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_style_durations_parse() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("200ms"), Ok(ms(200)));
        assert_eq!(parse_duration("1s"), Ok(ms(1000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("2"), Ok(ms(2000)));
        assert_eq!(parse_duration("0.25"), Ok(ms(250)));
        assert_eq!(parse_duration("2min"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1min 30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1s500ms"), Ok(ms(1500)));
        assert_eq!(parse_duration(" 10 ms "), Ok(ms(10)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
    }

    #[test]
    fn bad_durations_are_clear_errors() {
        for bad in [
            "",
            "ms",
            "-1s",
            "1.2.3s",
            "5 parsecs",
            "1e3",
            ".",
            "99999999999999999999999d",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
    }
}
