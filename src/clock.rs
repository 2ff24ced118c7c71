//! Time as the operator reads it: local time with its zone (or UTC with `--utc` or
//! `[tui] time = "utc"` in the config), one format everywhere, on the screen and in the CLI's human
//! output. The zone is read once at start from the system (`date +%z %Z`, which follows `TZ`); a
//! DST change during a session shows the old offset until the screen restarts.

use time::{OffsetDateTime, UtcOffset};

use crate::config::Loaded;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    offset: UtcOffset,
    /// `CET`, `UTC`, `+0530`: printed after full timestamps and in the History title.
    pub zone: String,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::utc()
    }
}

impl Clock {
    pub fn utc() -> Clock {
        Clock {
            offset: UtcOffset::UTC,
            zone: "UTC".into(),
        }
    }

    /// The system's local zone, or UTC (said so) when it cannot be read.
    pub fn local() -> Clock {
        let out = std::process::Command::new("date")
            .arg("+%z %Z")
            .stderr(std::process::Stdio::null())
            .output();
        let text = out
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Clock::parse_zone(&text).unwrap_or_else(Clock::utc)
    }

    /// `+0100 CET` → a clock at that offset named CET.
    fn parse_zone(text: &str) -> Option<Clock> {
        let (offset, name) = text.split_once(' ').unwrap_or((text, ""));
        let sign = match offset.get(..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        let h: i8 = offset.get(1..3)?.parse().ok()?;
        let m: i8 = offset.get(3..5)?.parse().ok()?;
        let offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
        let zone = if name.is_empty() {
            text.to_string()
        } else {
            name.to_string()
        };
        Some(Clock { offset, zone })
    }

    /// The clock the config and flags ask for: `--utc` wins, then `[tui] time`, then local.
    pub fn from_config(loaded: &Loaded, utc_flag: bool) -> Result<Clock> {
        if utc_flag {
            return Ok(Clock::utc());
        }
        let time = loaded
            .file
            .tui
            .as_ref()
            .and_then(|t| t.get("time"))
            .map(|v| v.as_str().unwrap_or("").to_string());
        match time.as_deref() {
            None | Some("local") => Ok(Clock::local()),
            Some("utc") => Ok(Clock::utc()),
            Some(other) => Err(Error::Usage(format!(
                "[tui] time = {other:?} in the config: use \"local\" or \"utc\""
            ))),
        }
    }

    fn at(&self, rfc3339: &str) -> Option<OffsetDateTime> {
        parse_rfc3339(rfc3339).map(|t| t.to_offset(self.offset))
    }

    /// `2026-11-24 10:47:19 CET`, for details and anything read alone.
    pub fn format(&self, rfc3339: &str) -> String {
        match self.at(rfc3339) {
            Some(t) => format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02} {}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                self.zone
            ),
            None => rfc3339.to_string(),
        }
    }

    /// `11-24 10:47:19`, for pane rows (the zone is in the pane's title).
    pub fn short(&self, rfc3339: &str) -> String {
        match self.at(rfc3339) {
            Some(t) => format!(
                "{:02}-{:02} {:02}:{:02}:{:02}",
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            None => rfc3339.to_string(),
        }
    }
}

/// `2026-11-24T22:47:19.123+00:00` (what `db::rfc3339` writes; `Z` accepted too).
fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i32>().ok();
    let date = time::Date::from_calendar_date(
        num(0..4)?,
        time::Month::try_from(num(5..7)? as u8).ok()?,
        num(8..10)? as u8,
    )
    .ok()?;
    let clock =
        time::Time::from_hms(num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8).ok()?;
    // The zone follows the seconds and their optional fraction.
    let rest = s
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "" => UtcOffset::UTC,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let h: i8 = z.get(1..3)?.parse().ok()?;
            let m: i8 = z.get(4..6).or_else(|| z.get(3..5))?.parse().ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    Some(time::PrimitiveDateTime::new(date, clock).assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format_in_local_time_with_its_zone_or_utc() {
        let cet = Clock::parse_zone("+0100 CET").unwrap();
        assert_eq!(
            cet.format("2026-11-24T22:47:19.123+00:00"),
            "2026-11-24 23:47:19 CET"
        );
        assert_eq!(cet.short("2026-11-24T23:30:00Z"), "11-25 00:30:00");
        let utc = Clock::utc();
        assert_eq!(
            utc.format("2026-11-25T00:30:00+01:00"),
            "2026-11-24 23:30:00 UTC"
        );
        let india = Clock::parse_zone("+0530 IST").unwrap();
        assert_eq!(india.short("2026-11-24T00:00:00+00:00"), "11-24 05:30:00");
        assert_eq!(Clock::parse_zone("garbage"), None);
        assert_eq!(utc.format("not a time"), "not a time");
    }
}
