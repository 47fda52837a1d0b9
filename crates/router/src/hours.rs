//! Business hours of one team: when people are there to answer.
//!
//! A team's hours are written in its own time zone ([`HoursConfig`]): opening intervals
//! per weekday plus holidays that close whole days. [`BusinessHours`] is the checked
//! form; it answers "is anyone there at this instant?" ([`BusinessHours::is_open`]),
//! "when are they back?" ([`BusinessHours::next_open`]) and says the latter to a
//! customer in Chinese or English ([`BusinessHours::describe_return`]).
//!
//! Local times are turned into instants day by day through jiff, so daylight-saving
//! changes are followed: an opening time that does not exist on a given day (it falls in
//! a spring-forward gap) is moved forward by the length of the gap, and one that occurs
//! twice (fall-back) means the first occurrence. This is jiff's (and RFC 5545's)
//! "compatible" disambiguation.

use frontdesk_core::Timestamp;
use frontdesk_faq::Lang;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How far ahead [`BusinessHours::next_open`] looks before it gives up.
const SEARCH_DAYS: u32 = 400;

/// Minutes in a day; `24:00` as an end of interval.
const DAY_MINUTES: u16 = 24 * 60;

/// The day keys of [`HoursConfig::hours`], Monday first.
const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A team's hours as written in the configuration.
///
/// ```toml
/// timezone = "Asia/Shanghai"
/// holidays = ["2026-10-01", "2026-10-02"]
/// [hours]
/// mon = "09:00-12:00, 13:30-18:00"
/// tue = "09:00-18:00"
/// sat = "closed"
/// ```
///
/// - `timezone`: an IANA zone name; UTC when left out.
/// - `hours`: keys `mon` … `sun`; values are comma-separated `HH:MM-HH:MM` intervals
///   (`00:00-24:00` for the whole day; `closed` or an empty string for none). A day
///   missing from the map is closed. An interval cannot run past midnight: write
///   `22:00-24:00` on one day and `00:00-02:00` on the next. When `hours` is empty the
///   team is open around the clock.
/// - `holidays`: `YYYY-MM-DD` dates in the team's zone, closed all day (also when
///   `hours` is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub hours: BTreeMap<String, String>,
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// What is wrong with an [`HoursConfig`]; each variant names the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoursError {
    /// `timezone` is not a zone in the bundled IANA database.
    UnknownZone { zone: String },
    /// A key of `hours` is not `mon` … `sun`.
    BadDay { day: String },
    /// An interval is not `HH:MM-HH:MM` with real clock times.
    BadInterval { day: String, interval: String },
    /// An interval ends at or before its start.
    EndBeforeStart { day: String, interval: String },
    /// A holiday is not a `YYYY-MM-DD` calendar date.
    BadHoliday { date: String },
}

impl fmt::Display for HoursError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoursError::UnknownZone { zone } => write!(
                f,
                "unknown time zone {zone:?} (expected an IANA name such as \"Asia/Shanghai\" or \"UTC\")"
            ),
            HoursError::BadDay { day } => write!(
                f,
                "unknown day {day:?} in hours (expected mon, tue, wed, thu, fri, sat or sun)"
            ),
            HoursError::BadInterval { day, interval } => write!(
                f,
                "bad opening interval {interval:?} for {day} (expected HH:MM-HH:MM between 00:00 and 24:00, e.g. \"09:00-18:00\")"
            ),
            HoursError::EndBeforeStart { day, interval } => write!(
                f,
                "opening interval {interval:?} for {day} does not end after it starts (an interval past midnight must be split, e.g. \"22:00-24:00\" and \"00:00-02:00\" on the next day)"
            ),
            HoursError::BadHoliday { date } => write!(
                f,
                "bad holiday date {date:?} (expected a calendar date written YYYY-MM-DD, e.g. \"2026-10-01\")"
            ),
        }
    }
}

impl std::error::Error for HoursError {}

/// One opening interval of a day, in minutes since local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Interval {
    start: u16,
    /// At most [`DAY_MINUTES`] (`24:00`).
    end: u16,
}

/// A team's checked business hours.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    tz: TimeZone,
    zone_name: String,
    /// Opening intervals per weekday, Monday first; sorted and not overlapping.
    week: [Vec<Interval>; 7],
    holidays: BTreeSet<Date>,
}

impl BusinessHours {
    /// Open around the clock, in UTC, with no holidays.
    pub fn always() -> Self {
        Self {
            tz: TimeZone::UTC,
            zone_name: "UTC".to_owned(),
            week: std::array::from_fn(|_| whole_day()),
            holidays: BTreeSet::new(),
        }
    }

    /// Checks a configuration; see [`HoursConfig`] for what it may say.
    ///
    /// Overlapping or touching intervals of one day are merged.
    pub fn from_config(c: &HoursConfig) -> Result<Self, HoursError> {
        let (tz, zone_name) = match c.timezone.as_deref() {
            None => (TimeZone::UTC, "UTC".to_owned()),
            Some(raw) => {
                let name = raw.trim();
                let tz = TimeZone::get(name).map_err(|_| HoursError::UnknownZone {
                    zone: raw.to_owned(),
                })?;
                let zone_name = tz.iana_name().unwrap_or(name).to_owned();
                (tz, zone_name)
            }
        };

        let week = if c.hours.is_empty() {
            std::array::from_fn(|_| whole_day())
        } else {
            let mut week: [Vec<Interval>; 7] = Default::default();
            for (key, spec) in &c.hours {
                let index =
                    day_index(key).ok_or_else(|| HoursError::BadDay { day: key.clone() })?;
                week[index].extend(parse_day(key, spec)?);
            }
            for day in &mut week {
                merge(day);
            }
            week
        };

        let holidays = c
            .holidays
            .iter()
            .map(|raw| {
                parse_date(raw.trim()).ok_or_else(|| HoursError::BadHoliday { date: raw.clone() })
            })
            .collect::<Result<BTreeSet<Date>, HoursError>>()?;

        Ok(Self {
            tz,
            zone_name,
            week,
            holidays,
        })
    }

    /// Whether the team is open at `at`.
    /// The same hours as a configuration would write them (for a form to edit).
    pub fn to_config(&self) -> HoursConfig {
        const KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        HoursConfig {
            timezone: Some(self.zone_name.clone()),
            hours: self
                .week
                .iter()
                .zip(KEYS)
                .filter(|(intervals, _)| !intervals.is_empty())
                .map(|(intervals, day)| {
                    let spans: Vec<String> = intervals
                        .iter()
                        .map(|i| format!("{}-{}", hm(i.start), hm(i.end)))
                        .collect();
                    (day.to_owned(), spans.join(", "))
                })
                .collect(),
            holidays: self.holidays.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// The hours in a line for people: zone, each day's intervals, holidays.
    pub fn summary(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let days: Vec<String> = self
            .week
            .iter()
            .zip(DAYS)
            .map(|(intervals, day)| match intervals.as_slice() {
                [] => format!("{day} closed"),
                list => {
                    let spans: Vec<String> = list
                        .iter()
                        .map(|i| format!("{}-{}", hm(i.start), hm(i.end)))
                        .collect();
                    format!("{day} {}", spans.join(","))
                }
            })
            .collect();
        format!(
            "{} · {} · {} holiday(s)",
            self.zone_name,
            days.join(" "),
            self.holidays.len()
        )
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        self.next_open(at) == Some(at)
    }

    /// When the team is next open: `at` itself if it is open then, otherwise the start of
    /// the next opening interval. `None` when it is not open at any time within the next
    /// 400 days (no opening hours at all, say).
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.week.iter().all(Vec::is_empty) {
            return None;
        }
        let t = at.to_jiff();
        let today = self.tz.to_datetime(t).date();
        // An interval of yesterday can still be running (a fall-back night, say), so the
        // search starts a day early.
        let mut date = today.yesterday().unwrap_or(today);
        for _ in 0..=SEARCH_DAYS + 1 {
            for (start, end) in self.windows(date) {
                if t < end {
                    return Some(if start <= t { at } else { start.into() });
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The IANA name of the team's time zone ("UTC" when none was configured).
    pub fn timezone_name(&self) -> &str {
        &self.zone_name
    }

    /// When people are back, for a customer, in the team's zone and the customer's
    /// language, e.g. `10月2日（周五）09:00（Asia/Shanghai 时间）` or
    /// `Friday 2 October at 09:00 (Asia/Shanghai time)`. The year is added when it is not
    /// the year of `at`. `None` when the team is never open. Meant for a closed team:
    /// when it is open at `at`, this describes `at` itself.
    pub fn describe_return(&self, at: Timestamp, lang: Lang) -> Option<String> {
        let back = self.tz.to_datetime(self.next_open(at)?.to_jiff());
        let now_year = self.tz.to_datetime(at.to_jiff()).year();
        let show_year = back.year() != now_year;
        let (hour, minute) = (back.hour(), back.minute());
        let zone = &self.zone_name;
        Some(match lang {
            Lang::Zh => {
                let year = if show_year {
                    format!("{}年", back.year())
                } else {
                    String::new()
                };
                format!(
                    "{year}{}月{}日（{}）{hour:02}:{minute:02}（{zone} 时间）",
                    back.month(),
                    back.day(),
                    weekday_zh(back.weekday()),
                )
            }
            Lang::En => {
                let year = if show_year {
                    format!(" {}", back.year())
                } else {
                    String::new()
                };
                format!(
                    "{} {} {}{year} at {hour:02}:{minute:02} ({zone} time)",
                    weekday_en(back.weekday()),
                    back.day(),
                    month_en(back.month()),
                )
            }
        })
    }

    /// The opening intervals of one local date as instants, in order; none on a holiday.
    fn windows(&self, date: Date) -> Vec<(jiff::Timestamp, jiff::Timestamp)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let index = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        self.week[index]
            .iter()
            .filter_map(|iv| {
                let start = self.instant(date, iv.start)?;
                let end = self.instant(date, iv.end)?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The instant of `minutes` after local midnight of `date` (`24:00` is the next
    /// midnight), with compatible disambiguation; `None` out of jiff's range.
    fn instant(&self, date: Date, minutes: u16) -> Option<jiff::Timestamp> {
        let (date, minutes) = if minutes >= DAY_MINUTES {
            (date.tomorrow().ok()?, 0)
        } else {
            (date, minutes)
        };
        let hour = i8::try_from(minutes / 60).ok()?;
        let minute = i8::try_from(minutes % 60).ok()?;
        let dt: DateTime = date.at(hour, minute, 0, 0);
        self.tz.to_ambiguous_timestamp(dt).compatible().ok()
    }
}

fn whole_day() -> Vec<Interval> {
    vec![Interval {
        start: 0,
        end: DAY_MINUTES,
    }]
}

/// `mon` → 0 … `sun` → 6 (ASCII case ignored).
fn day_index(key: &str) -> Option<usize> {
    let key = key.trim();
    DAY_KEYS.iter().position(|d| d.eq_ignore_ascii_case(key))
}

/// The intervals of one day's value: `closed`, empty, or comma-separated intervals.
fn parse_day(day: &str, spec: &str) -> Result<Vec<Interval>, HoursError> {
    let spec = spec.trim();
    if spec.is_empty() || spec.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    spec.split([',', '，'])
        .map(|part| parse_interval(day, part.trim()))
        .collect()
}

/// `HH:MM-HH:MM`; the end may be `24:00`.
fn parse_interval(day: &str, text: &str) -> Result<Interval, HoursError> {
    let bad = || HoursError::BadInterval {
        day: day.to_owned(),
        interval: text.to_owned(),
    };
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start = parse_clock(start.trim(), false).ok_or_else(bad)?;
    let end = parse_clock(end.trim(), true).ok_or_else(bad)?;
    if end <= start {
        return Err(HoursError::EndBeforeStart {
            day: day.to_owned(),
            interval: text.to_owned(),
        });
    }
    Ok(Interval { start, end })
}

/// `H:MM` or `HH:MM` as minutes after midnight; `24:00` only when `end_of_day` is allowed.
fn parse_clock(text: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(h) && all_digits(m)) || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (0..=23, 0..=59) => Some(h * 60 + m),
        (24, 0) if allow_24 => Some(DAY_MINUTES),
        _ => None,
    }
}

/// A `YYYY-MM-DD` date, exactly that shape, that exists in the calendar.
fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let year: i16 = text.get(0..4)?.parse().ok()?;
    let month: i8 = text.get(5..7)?.parse().ok()?;
    let day: i8 = text.get(8..10)?.parse().ok()?;
    Date::new(year, month, day).ok()
}

/// Sorts a day's intervals and merges those that overlap or touch.
fn merge(day: &mut Vec<Interval>) {
    day.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(day.len());
    for iv in day.drain(..) {
        match merged.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => merged.push(iv),
        }
    }
    *day = merged;
}

fn weekday_zh(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "周一",
        Weekday::Tuesday => "周二",
        Weekday::Wednesday => "周三",
        Weekday::Thursday => "周四",
        Weekday::Friday => "周五",
        Weekday::Saturday => "周六",
        Weekday::Sunday => "周日",
    }
}

fn weekday_en(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn month_en(month: i8) -> &'static str {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(zone: Option<&str>, hours: &[(&str, &str)], holidays: &[&str]) -> HoursConfig {
        HoursConfig {
            timezone: zone.map(str::to_owned),
            hours: hours
                .iter()
                .map(|(d, h)| ((*d).to_owned(), (*h).to_owned()))
                .collect(),
            holidays: holidays.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    /// Mon-Fri 09:00-18:00 in Shanghai, with Friday 2 October 2026 a holiday.
    fn shanghai() -> BusinessHours {
        let weekdays = ["mon", "tue", "wed", "thu", "fri"].map(|d| (d, "09:00-18:00"));
        BusinessHours::from_config(&config(Some("Asia/Shanghai"), &weekdays, &["2026-10-02"]))
            .expect("valid hours")
    }

    /// A local wall-clock time (`2026-09-29T10:00`) in `zone`, as an instant.
    fn local(zone: &str, civil: &str) -> Timestamp {
        let dt: DateTime = civil.parse().expect("civil datetime");
        let tz = TimeZone::get(zone).expect("zone");
        dt.to_zoned(tz).expect("in range").timestamp().into()
    }

    fn utc(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).expect("rfc3339")
    }

    const SH: &str = "Asia/Shanghai";

    #[test]
    fn a_tuesday_morning_in_shanghai_is_open() {
        let h = shanghai();
        let at = local(SH, "2026-09-29T10:00");
        assert!(h.is_open(at));
        assert_eq!(h.next_open(at), Some(at));
        assert_eq!(at, utc("2026-09-29T02:00:00Z"));
    }

    #[test]
    fn the_team_is_closed_at_six_pm_exactly() {
        let h = shanghai();
        assert!(h.is_open(local(SH, "2026-09-29T17:59:59")));
        assert!(!h.is_open(local(SH, "2026-09-29T18:00")));
        assert!(!h.is_open(local(SH, "2026-09-29T08:59:59")));
        assert!(h.is_open(local(SH, "2026-09-29T09:00")));
    }

    #[test]
    fn a_saturday_message_is_told_monday_nine() {
        let h = shanghai();
        let at = local(SH, "2026-09-26T11:30");
        assert!(!h.is_open(at));
        assert_eq!(h.next_open(at), Some(local(SH, "2026-09-28T09:00")));
    }

    #[test]
    fn a_holiday_friday_sends_thursday_evening_to_monday() {
        let h = shanghai();
        assert!(!h.is_open(local(SH, "2026-10-02T10:00")));
        assert_eq!(
            h.next_open(local(SH, "2026-10-01T18:30")),
            Some(local(SH, "2026-10-05T09:00"))
        );
    }

    #[test]
    fn a_lunch_break_closes_the_middle_of_the_day() {
        let c = config(Some(SH), &[("mon", "09:00-12:00, 13:30-18:00")], &[]);
        let h = BusinessHours::from_config(&c).expect("valid");
        assert!(h.is_open(local(SH, "2026-09-28T11:59")));
        assert!(!h.is_open(local(SH, "2026-09-28T12:00")));
        assert_eq!(
            h.next_open(local(SH, "2026-09-28T12:30")),
            Some(local(SH, "2026-09-28T13:30"))
        );
        assert!(h.is_open(local(SH, "2026-09-28T17:00")));
    }

    #[test]
    fn a_whole_day_runs_from_midnight_to_midnight() {
        let c = config(
            Some(SH),
            &[("fri", "09:00-18:00"), ("SAT", "00:00-24:00")],
            &[],
        );
        let h = BusinessHours::from_config(&c).expect("valid");
        assert!(h.is_open(local(SH, "2026-09-26T00:00")));
        assert!(h.is_open(local(SH, "2026-09-26T23:59:59")));
        assert!(!h.is_open(local(SH, "2026-09-27T00:00")));
        assert_eq!(
            h.next_open(local(SH, "2026-09-25T20:00")),
            Some(local(SH, "2026-09-26T00:00"))
        );
    }

    #[test]
    fn touching_intervals_merge_and_days_can_be_closed_explicitly() {
        let c = config(
            None,
            &[
                ("mon", "09:00-12:00,12:00-13:00"),
                ("tue", "closed"),
                ("wed", ""),
            ],
            &[],
        );
        let h = BusinessHours::from_config(&c).expect("valid");
        assert_eq!(
            h.week[0],
            vec![Interval {
                start: 540,
                end: 780
            }]
        );
        assert!(h.week[1].is_empty() && h.week[2].is_empty());
        assert_eq!(h.timezone_name(), "UTC");
    }

    #[test]
    fn a_team_with_no_opening_hours_is_never_back() {
        let c = config(Some(SH), &[("mon", "closed")], &[]);
        let h = BusinessHours::from_config(&c).expect("valid");
        let at = local(SH, "2026-09-28T10:00");
        assert!(!h.is_open(at));
        assert_eq!(h.next_open(at), None);
        assert_eq!(h.describe_return(at, Lang::En), None);
    }

    #[test]
    fn always_is_open_at_any_time() {
        let h = BusinessHours::always();
        for at in [
            Timestamp::from_micros(0),
            utc("2026-02-28T23:59:59Z"),
            utc("2026-10-03T12:34:56.789Z"),
        ] {
            assert!(h.is_open(at), "{at}");
        }
        assert_eq!(h.timezone_name(), "UTC");
    }

    #[test]
    fn empty_hours_mean_always_open_except_holidays() {
        let c = config(Some(SH), &[], &["2026-10-01"]);
        let h = BusinessHours::from_config(&c).expect("valid");
        assert!(h.is_open(local(SH, "2026-09-30T23:59")));
        assert!(!h.is_open(local(SH, "2026-10-01T12:00")));
        assert_eq!(
            h.next_open(local(SH, "2026-10-01T12:00")),
            Some(local(SH, "2026-10-02T00:00"))
        );
    }

    #[test]
    fn bad_configurations_name_the_value_at_fault() {
        let cases: Vec<(HoursConfig, HoursError, &str)> = vec![
            (
                config(Some("Mars/Olympus"), &[], &[]),
                HoursError::UnknownZone {
                    zone: "Mars/Olympus".into(),
                },
                "\"Mars/Olympus\"",
            ),
            (
                config(None, &[("funday", "09:00-18:00")], &[]),
                HoursError::BadDay {
                    day: "funday".into(),
                },
                "\"funday\"",
            ),
            (
                config(None, &[("mon", "25:00-18:00")], &[]),
                HoursError::BadInterval {
                    day: "mon".into(),
                    interval: "25:00-18:00".into(),
                },
                "\"25:00-18:00\"",
            ),
            (
                config(None, &[("tue", "9am-5pm")], &[]),
                HoursError::BadInterval {
                    day: "tue".into(),
                    interval: "9am-5pm".into(),
                },
                "\"9am-5pm\"",
            ),
            (
                config(None, &[("wed", "09:00-12:00,")], &[]),
                HoursError::BadInterval {
                    day: "wed".into(),
                    interval: "".into(),
                },
                "for wed",
            ),
            (
                config(None, &[("mon", "18:00-09:00")], &[]),
                HoursError::EndBeforeStart {
                    day: "mon".into(),
                    interval: "18:00-09:00".into(),
                },
                "\"18:00-09:00\"",
            ),
            (
                config(None, &[], &["2026-13-01"]),
                HoursError::BadHoliday {
                    date: "2026-13-01".into(),
                },
                "\"2026-13-01\"",
            ),
            (
                config(None, &[], &["next friday"]),
                HoursError::BadHoliday {
                    date: "next friday".into(),
                },
                "\"next friday\"",
            ),
        ];
        for (c, want, shown) in cases {
            let err = BusinessHours::from_config(&c).expect_err("must be rejected");
            assert_eq!(err, want);
            assert!(err.to_string().contains(shown), "{err}");
        }
    }

    #[test]
    fn new_york_hours_follow_daylight_saving_time() {
        const NY: &str = "America/New_York";
        let c = config(
            Some(NY),
            &[
                ("fri", "09:00-17:00"),
                ("sun", "02:30-06:00"),
                ("mon", "09:00-17:00"),
            ],
            &[],
        );
        let h = BusinessHours::from_config(&c).expect("valid");
        // Friday before the change is EST (UTC-5), Monday after it EDT (UTC-4).
        assert_eq!(
            h.next_open(utc("2026-03-06T12:00:00Z")),
            Some(utc("2026-03-06T14:00:00Z"))
        );
        assert_eq!(
            h.next_open(utc("2026-03-08T12:00:00Z")),
            Some(utc("2026-03-09T13:00:00Z"))
        );
        // On Sunday 8 March 2026 clocks jump from 02:00 to 03:00: 02:30 does not exist
        // and the compatible reading is 03:30 EDT.
        let saturday = local(NY, "2026-03-07T12:00");
        assert_eq!(h.next_open(saturday), Some(utc("2026-03-08T07:30:00Z")));
        assert!(!h.is_open(utc("2026-03-08T07:29:59Z")));
        assert!(h.is_open(utc("2026-03-08T07:30:00Z")));
        assert_eq!(
            h.describe_return(saturday, Lang::En).as_deref(),
            Some("Sunday 8 March at 03:30 (America/New_York time)")
        );
    }

    #[test]
    fn the_return_is_described_in_the_customers_language() {
        let weekdays = ["mon", "tue", "wed", "thu", "fri"].map(|d| (d, "09:00-18:00"));
        let h = BusinessHours::from_config(&config(Some(SH), &weekdays, &[])).expect("valid");
        let at = local(SH, "2026-10-01T20:00");
        assert_eq!(
            h.describe_return(at, Lang::Zh).as_deref(),
            Some("10月2日（周五）09:00（Asia/Shanghai 时间）")
        );
        assert_eq!(
            h.describe_return(at, Lang::En).as_deref(),
            Some("Friday 2 October at 09:00 (Asia/Shanghai time)")
        );
    }

    #[test]
    fn a_return_in_the_next_year_names_the_year() {
        let h = BusinessHours::from_config(&config(Some(SH), &[("mon", "09:00-18:00")], &[]))
            .expect("valid");
        let at = local(SH, "2026-12-31T20:00");
        assert_eq!(
            h.describe_return(at, Lang::Zh).as_deref(),
            Some("2027年1月4日（周一）09:00（Asia/Shanghai 时间）")
        );
        assert_eq!(
            h.describe_return(at, Lang::En).as_deref(),
            Some("Monday 4 January 2027 at 09:00 (Asia/Shanghai time)")
        );
    }

    #[test]
    fn a_configuration_reads_from_json_and_rejects_unknown_keys() {
        let c: HoursConfig = serde_json::from_str(
            r#"{"timezone": "Asia/Shanghai", "hours": {"mon": "09:00-18:00"}}"#,
        )
        .expect("valid json");
        assert!(c.holidays.is_empty());
        assert!(BusinessHours::from_config(&c).is_ok());
        assert!(serde_json::from_str::<HoursConfig>(r#"{"tz": "UTC"}"#).is_err());
    }
}
