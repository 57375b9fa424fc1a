//! Human units for durations and rates, as the table shows them.

/// Formats nanoseconds with the two most telling units: `3s 621ms`,
/// `725ms`, `2ms 310µs`, `18µs`, `35ns`. The second unit is shown while
/// the first is a single digit (or seconds and more), where it still
/// carries information.
pub fn duration(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const MIN: u64 = 60 * S;
    const H: u64 = 60 * MIN;
    match ns {
        n if n >= H => format!("{}h {}m", n / H, n % H / MIN),
        n if n >= MIN => format!("{}m {}s", n / MIN, n % MIN / S),
        n if n >= S => format!("{}s {}ms", n / S, n % S / MS),
        n if n >= 10 * MS => format!("{}ms", n / MS),
        n if n >= MS => format!("{}ms {}µs", n / MS, n % MS / US),
        n if n >= 10 * US => format!("{}µs", n / US),
        n if n >= US => format!("{}µs {}ns", n / US, n % US),
        n => format!("{n}ns"),
    }
}

/// Formats a rate: whole numbers with thousands separators from 100 up,
/// two decimals below (a slow operation's 0.25/s still says something).
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        return "-".to_string();
    }
    if per_sec < 100.0 {
        return format!("{per_sec:.2}");
    }
    thousands(per_sec.round() as u64)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in three significant digits with one unit: `1.68ms`,
/// `950µs`, `12.3s`, `35ns`; a minute and more as `2m 5s`. Narrow enough
/// that a table of six latency columns fits in 80 columns.
pub fn compact(ns: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("s", 1e9), ("ms", 1e6), ("µs", 1e3)];
    if ns >= 60_000_000_000 {
        return duration(ns);
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    // The largest unit in which the value, once rounded, is at least 1.
    for (name, scale) in UNITS {
        let value = ns as f64 / scale;
        if value >= 0.9995 {
            return format!("{}{name}", three_digits(value));
        }
    }
    format!("{ns}ns")
}

/// `1.68`, `16.8`, `168`: three significant digits, at least 1.
fn three_digits(value: f64) -> String {
    if value < 9.995 {
        format!("{value:.2}")
    } else if value < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_seed() {
        assert_eq!(duration(3_621_000_000), "3s 621ms");
        assert_eq!(duration(725_000_000), "725ms");
        assert_eq!(duration(2_310_000), "2ms 310µs");
        assert_eq!(duration(18_000), "18µs");
        assert_eq!(duration(1_500), "1µs 500ns");
        assert_eq!(duration(35), "35ns");
        assert_eq!(duration(0), "0ns");
        assert_eq!(duration(61_000_000_000), "1m 1s");
        assert_eq!(duration(3_720_000_000_000), "1h 2m");
    }

    #[test]
    fn rates_group_thousands() {
        assert_eq!(rate(1_234_567.4), "1,234,567");
        assert_eq!(rate(512.0), "512");
        assert_eq!(rate(0.25), "0.25");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1000), "1,000");
    }
}
