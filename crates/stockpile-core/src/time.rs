//! Calendar dates and UTC millisecond timestamps, computed without a clock.
//!
//! Deadlines in the Convention are calendar arithmetic on dates ("EIF + 4 years",
//! "within six months", "by 30 April"), so dates are civil proleptic-Gregorian days, and
//! timestamps are Unix milliseconds. The caller supplies "now"; nothing here reads a clock.

use std::fmt;

const MS_PER_DAY: i64 = 86_400_000;

/// A calendar date, stored as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days_since_epoch: i32,
}

/// Why a date string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {text:?}: expected YYYY-MM-DD with a real month and day")]
pub struct DateError {
    pub text: String,
}

impl Date {
    /// A date from year, month (1–12) and day (1–31); `None` if it does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            days_since_epoch: days_from_civil(year, month, day),
        })
    }

    /// Parses `YYYY-MM-DD` exactly (four-digit year, two-digit month and day).
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let error = || DateError {
            text: text.chars().take(32).collect(),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(error());
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let year = digits(0..4).ok_or_else(error)?;
        let month = digits(5..7).ok_or_else(error)?;
        let day = digits(8..10).ok_or_else(error)?;
        Date::from_ymd(year as i32, month, day).ok_or_else(error)
    }

    pub fn days_since_epoch(&self) -> i32 {
        self.days_since_epoch
    }

    pub fn from_days_since_epoch(days: i32) -> Date {
        Date {
            days_since_epoch: days,
        }
    }

    /// (year, month, day).
    pub fn ymd(&self) -> (i32, u32, u32) {
        civil_from_days(self.days_since_epoch)
    }

    pub fn year(&self) -> i32 {
        self.ymd().0
    }

    pub fn add_days(&self, days: i64) -> Date {
        let days = (self.days_since_epoch as i64 + days).clamp(i32::MIN as i64, i32::MAX as i64);
        Date {
            days_since_epoch: days as i32,
        }
    }

    /// Same day `months` months later; a day past the end of the target month is
    /// clamped to its last day (31 Aug + 6 months = 28/29 Feb).
    pub fn add_months(&self, months: i32) -> Date {
        let (year, month, day) = self.ymd();
        let month_index = year * 12 + (month as i32 - 1) + months;
        let (new_year, new_month) = (
            month_index.div_euclid(12),
            month_index.rem_euclid(12) as u32 + 1,
        );
        let new_day = day.min(days_in_month(new_year, new_month));
        Date {
            days_since_epoch: days_from_civil(new_year, new_month, new_day),
        }
    }

    pub fn add_years(&self, years: i32) -> Date {
        self.add_months(years * 12)
    }

    /// Whole days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(&self, later: Date) -> i64 {
        later.days_since_epoch as i64 - self.days_since_epoch as i64
    }

    /// Midnight UTC at the start of this date.
    pub fn start(&self) -> TimestampMs {
        TimestampMs(self.days_since_epoch as i64 * MS_PER_DAY)
    }

    /// The last millisecond of this date.
    pub fn end(&self) -> TimestampMs {
        TimestampMs(self.start().0 + MS_PER_DAY - 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Date::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A UTC instant in Unix milliseconds.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TimestampMs(pub i64);

impl TimestampMs {
    /// The calendar date (UTC) this instant falls on.
    pub fn date(&self) -> Date {
        Date {
            days_since_epoch: self
                .0
                .div_euclid(MS_PER_DAY)
                .clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        }
    }

    pub fn millis(&self) -> i64 {
        self.0
    }

    pub fn seconds(&self) -> i64 {
        self.0.div_euclid(1000)
    }
}

impl fmt::Display for TimestampMs {
    /// RFC 3339, e.g. `2015-08-15T10:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (hours, rest) = (millis_of_day / 3_600_000, millis_of_day % 3_600_000);
        let (minutes, rest) = (rest / 60_000, rest % 60_000);
        let (seconds, millis) = (rest / 1000, rest % 1000);
        write!(
            f,
            "{}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z",
            self.date()
        )
    }
}

impl fmt::Debug for TimestampMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimestampMs({self})")
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i32;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i32 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_dates() {
        let date = Date::parse("2012-07-01").unwrap();
        assert_eq!(date.to_string(), "2012-07-01");
        assert_eq!(Date::parse("1970-01-01").unwrap().days_since_epoch(), 0);
        for bad in [
            "2012-7-01",
            "2012-02-30",
            "2013-02-29",
            "abcd-01-01",
            "2012-13-01",
            "",
            "2012-07-01 ",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(Date::parse("2012-02-29").is_ok());
    }

    #[test]
    fn deadline_arithmetic_matches_the_convention() {
        // Finland: EIF 1 Jul 2012, Article 4 deadline 1 Jul 2016.
        let eif = Date::parse("2012-07-01").unwrap();
        assert_eq!(eif.add_years(4).to_string(), "2016-07-01");
        assert_eq!(eif.add_days(180).to_string(), "2012-12-28");
        assert_eq!(
            Date::parse("2015-08-31").unwrap().add_months(6).to_string(),
            "2016-02-29"
        );
    }

    #[test]
    fn round_trips_every_day_over_centuries() {
        for days in -200_000..200_000 {
            let date = Date::from_days_since_epoch(days);
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), Some(date));
        }
    }

    #[test]
    fn timestamps_render_as_rfc3339() {
        assert_eq!(TimestampMs(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            TimestampMs(1_439_632_800_123).to_string(),
            "2015-08-15T10:00:00.123Z"
        );
        assert_eq!(TimestampMs(-1).date().to_string(), "1969-12-31");
    }
}
