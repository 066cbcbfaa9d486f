//! Durations written as systemd writes them: `10s`, `500ms`, `2m`, `1h`, `1.5s`, `3` (seconds).

use std::time::Duration;

/// Parses one duration. Units: `ms`, `s`, `m`/`min`, `h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale_ms = match unit.trim() {
        "ms" | "msec" => 1.0,
        "" | "s" | "sec" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" | "hr" => 3_600_000.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h, e.g. 10s or 500ms)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m, 1.5s)"))?;
    let ms = value * scale_ms;
    if !ms.is_finite() || ms > 1e15 {
        return Err(format!("{text:?} is too long"));
    }
    Ok(Duration::from_micros((ms * 1_000.0).round() as u64))
}

/// Writes a duration back the way a person would: `300ms`, `10s`, `1.5s`, `2m`, `2m30s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms % 1_000 == 0 {
            format!("{}s", ms / 1_000)
        } else {
            let s = format!("{:.3}", ms as f64 / 1_000.0);
            format!("{}s", s.trim_end_matches('0'))
        }
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_style_durations_parse() {
        let ms = |text| parse_duration(text).map(|d| d.as_millis());
        assert_eq!(ms("10s"), Ok(10_000));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("3"), Ok(3_000));
        assert_eq!(ms("0.25"), Ok(250));
        assert_eq!(ms("5 min"), Ok(300_000));
    }

    #[test]
    fn bad_durations_are_clear_errors() {
        for bad in [
            "",
            "s",
            "ten seconds",
            "10 parsecs",
            "1.2.3s",
            "-1s",
            "1e400s",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(!err.is_empty());
        }
        assert!(
            parse_duration("10x")
                .expect_err("bad unit")
                .contains("unknown unit")
        );
    }

    #[test]
    fn durations_format_back_like_they_are_written() {
        let f = |ms| format_duration(Duration::from_millis(ms));
        assert_eq!(f(300), "300ms");
        assert_eq!(f(10_000), "10s");
        assert_eq!(f(1_500), "1.5s");
        assert_eq!(f(120_000), "2m");
        assert_eq!(f(150_000), "2m30s");
    }
}
