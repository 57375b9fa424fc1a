//! System variables, `{{$name arguments}}`: values made afresh for each
//! use, as VS Code REST Client, the JetBrains HTTP Client and httpyac
//! document them. The ones known when the file is loaded (`$processEnv`,
//! `$dotenv`) are resolved by `plan`; this module parses and renders the
//! per-call ones.
//!
//! Dates use chrono, which formats without allocating and reads the local
//! time zone the way the C library does.

use std::io::Write;

use chrono::{DateTime, Duration, Local, Months, TimeZone, Utc};

/// A per-call value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    /// The operation's number (`{{$number}}`).
    Number,
    /// A random (version 4) UUID.
    Uuid,
    /// A random integer in `min..max`.
    RandomInt {
        min: i64,
        max: i64,
    },
    /// A random number in `min..max` with three decimals.
    RandomFloat {
        min: i64,
        max: i64,
    },
    /// `count` random characters from `alphabet`.
    RandomText {
        alphabet: &'static [u8],
        count: usize,
    },
    RandomEmail,
    /// The time, shifted by `offset`, as `format` says.
    Time {
        format: TimeFormat,
        offset: Offset,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// Seconds since the epoch.
    Unix,
    /// A chrono format string, in UTC or local time.
    Pattern { pattern: String, local: bool },
}

/// `-1 d`: an amount of a unit, added to the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    amount: i64,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Unit {
    Years,
    Months,
    Weeks,
    Days,
    Hours,
    Minutes,
    #[default]
    Seconds,
    Millis,
}

const ALPHABETIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEXADECIMAL: &[u8] = b"0123456789abcdef";

/// What `{{$...}}` names this module knows, for messages.
pub const KNOWN: &str = "$number, $uuid, $guid, $random.uuid, $randomInt [MIN MAX], \
                         $random.integer(MIN, MAX), $random.float(MIN, MAX), \
                         $random.alphabetic(N), $random.alphanumeric(N), $random.hexadecimal(N), \
                         $random.email, $timestamp [OFFSET UNIT], $isoTimestamp, \
                         $datetime FORMAT [OFFSET UNIT], $localDatetime FORMAT [OFFSET UNIT], \
                         $processEnv NAME, $dotenv NAME";

/// Parses a per-call system variable: `expression` is what is between the
/// braces, starting with `$`. `None` when it is not one of them (it may
/// still be one `plan` resolves, such as `$processEnv`).
pub fn parse(expression: &str) -> Option<Result<System, String>> {
    let (name, arguments) = match expression.find([' ', '\t', '(']) {
        Some(i) => (&expression[..i], expression[i..].trim()),
        None => (expression, ""),
    };
    let result = match name {
        "$number" => no_arguments(arguments, System::Number),
        "$guid" | "$uuid" | "$random.uuid" => no_arguments(arguments, System::Uuid),
        "$randomInt" if arguments.is_empty() => Ok(System::RandomInt { min: 0, max: 1000 }),
        "$randomInt" => words(arguments, 2).and_then(|w| range(&w, false)),
        "$random.integer" => call_arguments(arguments).and_then(|a| range(&a, false)),
        "$random.float" => call_arguments(arguments).and_then(|a| range(&a, true)),
        "$random.alphabetic" => text(arguments, ALPHABETIC),
        "$random.alphanumeric" => text(arguments, ALPHANUMERIC),
        "$random.hexadecimal" => text(arguments, HEXADECIMAL),
        "$random.email" => no_arguments(arguments, System::RandomEmail),
        "$timestamp" => offset(arguments).map(|offset| System::Time {
            format: TimeFormat::Unix,
            offset,
        }),
        "$isoTimestamp" => no_arguments(
            arguments,
            System::Time {
                format: TimeFormat::Pattern {
                    pattern: "%Y-%m-%dT%H:%M:%S%.3fZ".into(),
                    local: false,
                },
                offset: Offset::default(),
            },
        ),
        "$datetime" => datetime(arguments, false),
        "$localDatetime" => datetime(arguments, true),
        _ => return None,
    };
    Some(result.map_err(|why| format!("{{{{{expression}}}}}: {why}")))
}

fn no_arguments(arguments: &str, system: System) -> Result<System, String> {
    if arguments.is_empty() || arguments == "()" {
        Ok(system)
    } else {
        Err(format!("unexpected `{arguments}`: it takes no arguments"))
    }
}

fn words(arguments: &str, count: usize) -> Result<Vec<&str>, String> {
    let words: Vec<&str> = arguments.split_whitespace().collect();
    if words.len() == count {
        Ok(words)
    } else {
        Err(format!("expected {count} numbers, found `{arguments}`"))
    }
}

/// `(a, b)` of the JetBrains spelling.
fn call_arguments(arguments: &str) -> Result<Vec<&str>, String> {
    let inner = arguments
        .strip_prefix('(')
        .and_then(|a| a.strip_suffix(')'))
        .ok_or_else(|| format!("expected arguments in parentheses, found `{arguments}`"))?;
    Ok(inner
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect())
}

fn range(words: &[&str], float: bool) -> Result<System, String> {
    let number = |w: &str| {
        w.parse::<i64>()
            .map_err(|_| format!("`{w}` is not a whole number"))
    };
    let (min, max) = match words {
        [] => (0, 1000),
        [min, max] => (number(min)?, number(max)?),
        _ => return Err("expected a minimum and a maximum".to_string()),
    };
    if min >= max {
        return Err(format!("the minimum {min} is not below the maximum {max}"));
    }
    Ok(if float {
        System::RandomFloat { min, max }
    } else {
        System::RandomInt { min, max }
    })
}

fn text(arguments: &str, alphabet: &'static [u8]) -> Result<System, String> {
    let count = match call_arguments(arguments)?.as_slice() {
        [count] => count
            .parse::<usize>()
            .ok()
            .filter(|c| *c <= 4096)
            .ok_or_else(|| format!("`{count}` is not a length up to 4096"))?,
        _ => return Err("expected a length, as in (10)".to_string()),
    };
    Ok(System::RandomText { alphabet, count })
}

/// `[OFFSET UNIT]` as REST Client writes it: `-1 d`, `3 h`.
fn offset(arguments: &str) -> Result<Offset, String> {
    let words: Vec<&str> = arguments.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(Offset::default()),
        [amount, unit] => {
            let amount = amount
                .parse::<i64>()
                .map_err(|_| format!("`{amount}` is not a whole number"))?;
            let unit = match *unit {
                "y" => Unit::Years,
                "M" => Unit::Months,
                "w" => Unit::Weeks,
                "d" => Unit::Days,
                "h" => Unit::Hours,
                "m" => Unit::Minutes,
                "s" => Unit::Seconds,
                "ms" => Unit::Millis,
                other => {
                    return Err(format!(
                        "`{other}` is not a unit (y, M, w, d, h, m, s or ms)"
                    ))
                }
            };
            Ok(Offset { amount, unit })
        }
        _ => Err(format!(
            "expected an offset such as `-1 d`, found `{arguments}`"
        )),
    }
}

/// `rfc1123|iso8601|"FORMAT"|'FORMAT' [OFFSET UNIT]`.
fn datetime(arguments: &str, local: bool) -> Result<System, String> {
    let (format, rest) =
        if let Some(quote) = arguments.chars().next().filter(|c| "\"'".contains(*c)) {
            let end = arguments[1..]
                .find(quote)
                .ok_or_else(|| format!("the format `{arguments}` has no closing quote"))?;
            (
                dayjs_to_chrono(&arguments[1..end + 1])?,
                &arguments[end + 2..],
            )
        } else {
            let (word, rest) = arguments.split_once(' ').unwrap_or((arguments, ""));
            let pattern = match (word, local) {
                ("rfc1123", false) => "%a, %d %b %Y %H:%M:%S GMT",
                ("rfc1123", true) => "%a, %d %b %Y %H:%M:%S %z",
                ("iso8601", false) => "%Y-%m-%dT%H:%M:%S%.3fZ",
                ("iso8601", true) => "%Y-%m-%dT%H:%M:%S%.3f%:z",
                _ => {
                    return Err(format!(
                        "expected a format: rfc1123, iso8601 or a quoted one such as \
                     \"YYYY-MM-DD\", found `{word}`"
                    ))
                }
            };
            (pattern.to_string(), rest)
        };
    Ok(System::Time {
        format: TimeFormat::Pattern {
            pattern: format,
            local,
        },
        offset: offset(rest.trim())?,
    })
}

/// A Day.js format (what REST Client's quoted formats are) as a chrono
/// one: `YYYY-MM-DD HH:mm:ss` becomes `%Y-%m-%d %H:%M:%S`.
fn dayjs_to_chrono(format: &str) -> Result<String, String> {
    const TOKENS: [(&str, &str); 25] = [
        ("YYYY", "%Y"),
        ("YY", "%y"),
        ("MMMM", "%B"),
        ("MMM", "%b"),
        ("MM", "%m"),
        ("M", "%-m"),
        ("DD", "%d"),
        ("D", "%-d"),
        ("dddd", "%A"),
        ("ddd", "%a"),
        ("d", "%w"),
        ("HH", "%H"),
        ("H", "%-H"),
        ("hh", "%I"),
        ("h", "%-I"),
        ("mm", "%M"),
        ("m", "%-M"),
        ("ss", "%S"),
        ("s", "%-S"),
        ("SSS", "%3f"),
        ("A", "%p"),
        ("a", "%P"),
        ("ZZ", "%z"),
        ("Z", "%:z"),
        ("X", "%s"),
    ];
    let mut out = String::new();
    let mut rest = format;
    'outer: while let Some(c) = rest.chars().next() {
        if c == '[' {
            let end = rest
                .find(']')
                .ok_or_else(|| format!("`[` without `]` in the format `{format}`"))?;
            out.push_str(&rest[1..end].replace('%', "%%"));
            rest = &rest[end + 1..];
            continue;
        }
        for (token, chrono) in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str(chrono);
                rest = after;
                continue 'outer;
            }
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

impl System {
    /// Appends a fresh value to `out`.
    pub fn render(&self, out: &mut Vec<u8>, number: u64) {
        match self {
            System::Number => crate::template::push_decimal(out, number),
            System::Uuid => {
                let uuid =
                    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
                out.extend_from_slice(
                    uuid.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer())
                        .as_bytes(),
                );
            }
            System::RandomInt { min, max } => {
                let _ = write!(out, "{}", fastrand::i64(*min..*max));
            }
            System::RandomFloat { min, max } => {
                let value = *min as f64 + fastrand::f64() * (*max - *min) as f64;
                let _ = write!(out, "{value:.3}");
            }
            System::RandomText { alphabet, count } => {
                out.extend((0..*count).map(|_| alphabet[fastrand::usize(..alphabet.len())]));
            }
            System::RandomEmail => {
                out.extend((0..10).map(|_| ALPHABETIC[fastrand::usize(..26)]));
                out.extend_from_slice(b"@example.com");
            }
            System::Time { format, offset } => {
                let now = offset.apply(Utc::now());
                match format {
                    TimeFormat::Unix => crate::template::push_decimal(
                        out,
                        u64::try_from(now.timestamp()).unwrap_or(0),
                    ),
                    TimeFormat::Pattern {
                        pattern,
                        local: false,
                    } => {
                        let _ = write!(out, "{}", now.format(pattern));
                    }
                    TimeFormat::Pattern {
                        pattern,
                        local: true,
                    } => {
                        let _ = write!(
                            out,
                            "{}",
                            Local.from_utc_datetime(&now.naive_utc()).format(pattern)
                        );
                    }
                }
            }
        }
    }
}

impl Offset {
    fn apply(self, time: DateTime<Utc>) -> DateTime<Utc> {
        let Offset { amount, unit } = self;
        let months = |m: i64| {
            let shift = Months::new(u32::try_from(m.unsigned_abs()).unwrap_or(u32::MAX));
            if m < 0 {
                time.checked_sub_months(shift)
            } else {
                time.checked_add_months(shift)
            }
        };
        let shifted = match unit {
            Unit::Years => months(amount.saturating_mul(12)),
            Unit::Months => months(amount),
            Unit::Weeks => time.checked_add_signed(Duration::weeks(amount)),
            Unit::Days => time.checked_add_signed(Duration::days(amount)),
            Unit::Hours => time.checked_add_signed(Duration::hours(amount)),
            Unit::Minutes => time.checked_add_signed(Duration::minutes(amount)),
            Unit::Seconds => time.checked_add_signed(Duration::seconds(amount)),
            Unit::Millis => time.checked_add_signed(Duration::milliseconds(amount)),
        };
        shifted.unwrap_or(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(expression: &str) -> String {
        let system = parse(expression).unwrap().unwrap();
        let mut out = Vec::new();
        system.render(&mut out, 7);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_have_their_shape() {
        let uuid = render("$guid");
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_ne!(render("$uuid"), render("$random.uuid"));
        for _ in 0..100 {
            let n: i64 = render("$randomInt 5 8").parse().unwrap();
            assert!((5..8).contains(&n));
            let n: i64 = render("$random.integer(-2, 2)").parse().unwrap();
            assert!((-2..2).contains(&n));
        }
        assert_eq!(render("$random.hexadecimal(12)").len(), 12);
        assert!(render("$random.email").ends_with("@example.com"));
        assert_eq!(render("$number"), "7");
    }

    #[test]
    fn times_follow_their_format_and_offset() {
        let now: i64 = render("$timestamp").parse().unwrap();
        let yesterday: i64 = render("$timestamp -1 d").parse().unwrap();
        assert!((now - yesterday - 86_400).abs() <= 2, "{now} {yesterday}");
        assert!(render("$datetime rfc1123").ends_with(" GMT"));
        let iso = render("$datetime iso8601 1 y");
        assert_eq!(iso.len(), "2026-01-01T00:00:00.000Z".len(), "{iso}");
        let custom = render("$datetime \"YYYY-MM-DD [at] HH:mm\"");
        assert_eq!(custom.len(), "2026-01-01 at 00:00".len(), "{custom}");
        assert!(render("$isoTimestamp").ends_with('Z'));
        assert!(render("$localDatetime 'YYYY'").len() == 4);
    }

    #[test]
    fn bad_arguments_are_explained() {
        for (expression, expected) in [
            ("$randomInt 5", "expected 2 numbers"),
            ("$randomInt 9 1", "not below"),
            ("$timestamp 1 parsec", "not a unit"),
            ("$datetime rfc", "expected a format"),
            ("$guid x", "takes no arguments"),
        ] {
            let error = parse(expression).unwrap().unwrap_err();
            assert!(error.contains(expected), "{expression}: {error}");
        }
        assert!(parse("$processEnv HOME").is_none());
    }
}
