//! Durations as the configuration writes them: a whole number and one unit, `"30s"`, `"5m"`,
//! `"24h"`, `"90d"` (and `"500ms"`). Anything else is refused rather than guessed at.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!("\"{text}\" has no unit (use e.g. \"30s\", \"5m\", \"24h\", \"90d\")")
    })?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("\"{text}\" is not a duration (use e.g. \"30s\", \"5m\", \"24h\", \"90d\")")
    })?;
    let unit_secs = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "\"{text}\" has an unknown unit \"{unit}\" (use ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

/// A duration as the configuration would write it, in the largest unit that keeps it whole.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_largest_whole_unit() {
        assert_eq!(format(Duration::from_secs(600)), "10m");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            parse(&format(Duration::from_secs(7200))),
            Ok(Duration::from_secs(7200))
        );
    }

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "",
            "30",
            "s",
            "1.5h",
            "5 m",
            "-5s",
            "5M",
            "3w",
            "1h30m",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
