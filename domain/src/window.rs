//! Consent windows (照会可能期間): the interval in which an institution may read a patient's
//! medical information (診療・薬剤情報, 特定健診等情報) after one reception, as pure functions of
//! the reception's facts. Instants are parameters — nothing here reads a clock — so the server
//! enforces the same rule that the tests check, and the browser can show the same end time.
//!
//! All calendar reasoning (days, months) is done in Japan Standard Time through the IANA
//! `Asia/Tokyo` zone; instants are stored and compared in UTC.
//!
//! The rules, from seed 002 「(参考) 薬剤情報等、特定健診情報の照会可能期間」:
//! - 通常とは異なる動線 (機器故障時等を含む): 「同意情報登録後から診療日の翌日23時59分まで」
//! - オンライン診療等: the same, 「※予約(同意)取消しがなされない限り」
//! - 往診: 「同意情報登録後24時間」
//! - 訪問診療等: 「継続的な関係のもと訪問診療等が行われている間※ (毎月訪問診療等(保険診療)が
//!   行われていることが レセプト請求の審査結果から確認できる間) ※患者による同意取消しがなされない限り」
//!   — see [`home_visit_end`] for the exact month rule implemented.
//! - 資格確認限定型: no medical information at all.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::kind::ReceptionKind;

/// Everything the window of one reception depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInput {
    pub kind: ReceptionKind,
    /// 同意情報登録: when the consent was registered (the card signed).
    pub registered_at: DateTime<Utc>,
    /// 診療日 as a JST calendar date. Online care asks for it; the other day-based kinds
    /// register for today, so `None` means "the JST date of `registered_at`". Ignored by the
    /// kinds whose window does not depend on a visit date.
    pub visit_date: Option<NaiveDate>,
    /// 訪問診療等 only: JST dates of the visits that took place under this registration. Dates
    /// before the registration month, and planned (future) visits, must not be passed: a visit
    /// counts as a fact once it has happened.
    pub home_visits: Vec<NaiveDate>,
    /// When the patient (or staff on the patient's request) withdrew all consents (同意取消), or
    /// cancelled the booking (予約取消, online care). Ends every window at that instant.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// A calendar month in JST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct YearMonth {
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

impl YearMonth {
    pub fn of(date: NaiveDate) -> Self {
        YearMonth {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn next(self) -> Self {
        if self.month >= 12 {
            YearMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first day of the month, `None` only for a month outside chrono's range.
    pub fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }
}

/// Why a window ends where it does; lets the UI say it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WindowEnd {
    /// 診療日の翌日23時59分まで.
    DayAfterVisit { visit_date: NaiveDate },
    /// 同意情報登録後24時間.
    TwentyFourHours,
    /// 訪問診療等: `month` is the first calendar month without a recorded visit; the window
    /// ends when it is over. Recording a visit in that month moves the end on.
    MonthWithoutVisit { month: YearMonth },
    /// 同意取消 / 予約取消.
    Withdrawn,
}

/// The consent window of one reception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Window {
    /// The kind never gives access to medical information (資格確認限定型).
    NoMedicalInformation,
    /// Medical information may be read at `start <= now < end`; always `start < end`.
    Interval {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        ends_by: WindowEnd,
    },
    /// The registration gives no access at all: it came at or after the instant the window would
    /// have ended (e.g. online care registered two days after the visit date), or it was
    /// withdrawn at (or, inconsistently, before) the instant of registration. Kept distinct from
    /// an interval of zero length so the patient can be told why, and so `start < end` holds.
    Empty {
        registered_at: DateTime<Utc>,
        ends_by: WindowEnd,
    },
}

impl Window {
    /// The exclusive end instant, if the window has one.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        match self {
            Window::Interval { end, .. } => Some(*end),
            _ => None,
        }
    }

    /// The last second at which access is still allowed, as JST wall-clock time, for the
    /// patient's copy: an end at 2026-11-24 00:00:00 JST shows as 2026-11-23 23:59:59.
    pub fn last_second_jst(&self) -> Option<NaiveDateTime> {
        self.end().map(last_second_jst)
    }

    /// The end as the patient sees it, to the minute: "2026-11-23 23:59 JST".
    pub fn display_end_jst(&self) -> Option<String> {
        self.last_second_jst()
            .map(|t| format!("{} JST", t.format("%Y-%m-%d %H:%M")))
    }
}

/// Access is allowed at `now`.
pub fn is_open(window: &Window, now: DateTime<Utc>) -> bool {
    match window {
        Window::Interval { start, end, .. } => *start <= now && now < *end,
        Window::NoMedicalInformation | Window::Empty { .. } => false,
    }
}

/// The consent window of one reception (SPEC §2, seed 002).
pub fn window(input: &WindowInput) -> Window {
    let start = input.registered_at;
    let natural = match input.kind {
        ReceptionKind::EligibilityOnly => return Window::NoMedicalInformation,
        ReceptionKind::OnlineCare | ReceptionKind::SeparateRoute | ReceptionKind::DeviceFailure => {
            let visit_date = input.visit_date.unwrap_or_else(|| jst_date(start));
            (
                day_after_visit_end(visit_date),
                WindowEnd::DayAfterVisit { visit_date },
            )
        }
        ReceptionKind::HouseCall => (
            // Saturating: an instant at the end of chrono's range must not panic.
            start
                .checked_add_signed(Duration::hours(24))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            WindowEnd::TwentyFourHours,
        ),
        ReceptionKind::HomeVisit => {
            let gap = first_month_without_visit(jst_date(start), &input.home_visits);
            (
                home_visit_end(gap),
                WindowEnd::MonthWithoutVisit { month: gap },
            )
        }
    };
    let (end, ends_by) = match input.withdrawn_at {
        Some(withdrawn) if withdrawn < natural.0 => (withdrawn, WindowEnd::Withdrawn),
        _ => natural,
    };
    if end <= start {
        Window::Empty {
            registered_at: start,
            ends_by,
        }
    } else {
        Window::Interval {
            start,
            end,
            ends_by,
        }
    }
}

/// The JST calendar date of an instant.
pub fn jst_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&Tokyo).date_naive()
}

/// An instant as JST wall-clock time.
pub fn to_jst(instant: DateTime<Utc>) -> DateTime<Tz> {
    instant.with_timezone(&Tokyo)
}

/// The last whole second before an exclusive end, as JST wall-clock time.
pub fn last_second_jst(end: DateTime<Utc>) -> NaiveDateTime {
    let last = (end - Duration::nanoseconds(1))
        .with_timezone(&Tokyo)
        .naive_local();
    // Drop the fraction: the display is "until hh:mm:ss", inclusive.
    last - Duration::nanoseconds(i64::from(last.and_utc().timestamp_subsec_nanos()))
}

/// 00:00 JST of `date`, as an instant.
///
/// Japan has had no DST since 1951, so every midnight we meet exists exactly once. The
/// DST years 1948–1951 did skip local midnight (clocks went from Saturday 24:00 to 01:00); for
/// such a date the first local instant of the day that exists is taken, so this never panics.
pub fn jst_start_of_day(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    for hours in 0..=3 {
        match Tokyo.from_local_datetime(&(midnight + Duration::hours(hours))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    // Unreachable with the tz database (no gap is longer than an hour); still, no panic.
    Utc.from_utc_datetime(&midnight)
}

/// End of 「診療日の翌日23時59分まで」: access while `now < (visit_date + 2 days) 00:00 JST`.
/// Saturating at chrono's last date keeps absurd input from panicking.
fn day_after_visit_end(visit_date: NaiveDate) -> DateTime<Utc> {
    let end_day = visit_date
        .succ_opt()
        .and_then(|d| d.succ_opt())
        .unwrap_or(NaiveDate::MAX);
    jst_start_of_day(end_day)
}

/// 訪問診療等: the first calendar month (JST) after the registration month with no visit.
///
/// The registration month counts as a month with a visit: a 訪問診療等 registration is made on
/// the institution's device at the patient's home, i.e. during a visit (SPEC §1, §2), and
/// without this a registration on the 31st would close the next morning. Visits dated in or
/// after a gap month do not extend the window: once a month has passed with none, the
/// continuing relationship the seed requires has been broken, and only a new registration
/// opens a new window.
fn first_month_without_visit(registered_on: NaiveDate, visits: &[NaiveDate]) -> YearMonth {
    let mut months: Vec<YearMonth> = visits.iter().map(|d| YearMonth::of(*d)).collect();
    months.sort_unstable();
    months.dedup();
    let mut month = YearMonth::of(registered_on).next();
    while months.binary_search(&month).is_ok() {
        month = month.next();
    }
    month
}

/// 訪問診療等 ends when the first month without a visit has passed, i.e. at 00:00 JST on the
/// first day of the month after it.
///
/// Seed 002 only says the window lasts 「継続的な関係のもと訪問診療等が行われている間
/// (毎月訪問診療等(保険診療)が行われていることがレセプト請求の審査結果から確認できる間)」 and
/// gives no cut-off instant; the national system learns of visits from claims reviews, weeks
/// later. This portal uses visits recorded by the institution, and ends access as SPEC §2 says,
/// "when a calendar month passes with none": a month without a visit is only known to be
/// without one once it is over, so access lasts until its end. With visits in every month up to
/// month M, access lasts until the end of month M+1.
pub fn home_visit_end(first_month_without_visit: YearMonth) -> DateTime<Utc> {
    match first_month_without_visit.next().first_day() {
        Some(day) => jst_start_of_day(day),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    /// An instant given as JST wall-clock time, computed with a fixed +9 hours: an oracle
    /// independent of the tz database the code uses.
    fn jst(y: i32, m: u32, day: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        let local = d(y, m, day)
            .and_hms_opt(h, min, s)
            .expect("valid test time");
        Utc.from_utc_datetime(&(local - Duration::hours(9)))
    }

    fn input(kind: ReceptionKind, registered_at: DateTime<Utc>) -> WindowInput {
        WindowInput {
            kind,
            registered_at,
            visit_date: None,
            home_visits: Vec::new(),
            withdrawn_at: None,
        }
    }

    const DAY_KINDS: [ReceptionKind; 3] = [
        ReceptionKind::OnlineCare,
        ReceptionKind::SeparateRoute,
        ReceptionKind::DeviceFailure,
    ];

    #[test]
    fn online_care_booked_ahead_shows_the_day_after_the_visit() {
        let mut i = input(ReceptionKind::OnlineCare, jst(2026, 11, 20, 10, 0, 0));
        i.visit_date = Some(d(2026, 11, 22));
        let w = window(&i);
        assert_eq!(
            w,
            Window::Interval {
                start: jst(2026, 11, 20, 10, 0, 0),
                end: jst(2026, 11, 24, 0, 0, 0),
                ends_by: WindowEnd::DayAfterVisit {
                    visit_date: d(2026, 11, 22)
                },
            }
        );
        assert_eq!(w.display_end_jst().as_deref(), Some("2026-11-23 23:59 JST"));
        assert_eq!(
            w.last_second_jst(),
            Some(d(2026, 11, 23).and_hms_opt(23, 59, 59).expect("t"))
        );
        // Open from registration (before the visit date), closed one second after 23:59:59.
        assert!(!is_open(&w, jst(2026, 11, 20, 9, 59, 59)));
        assert!(is_open(&w, jst(2026, 11, 20, 10, 0, 0)));
        assert!(is_open(&w, jst(2026, 11, 23, 23, 59, 59)));
        assert!(!is_open(&w, jst(2026, 11, 24, 0, 0, 0)));
    }

    #[test]
    fn today_means_the_jst_date_not_the_utc_date() {
        // 2026-11-23 16:30 UTC is already 2026-11-24 01:30 in Japan.
        let registered = Utc
            .with_ymd_and_hms(2026, 11, 23, 16, 30, 0)
            .single()
            .expect("t");
        let w = window(&input(ReceptionKind::SeparateRoute, registered));
        assert_eq!(w.end(), Some(jst(2026, 11, 26, 0, 0, 0)));
        assert_eq!(w.display_end_jst().as_deref(), Some("2026-11-25 23:59 JST"));
    }

    #[test]
    fn year_end_and_leap_day() {
        let cases = [
            (d(2026, 12, 30), jst(2027, 1, 1, 0, 0, 0)),
            (d(2026, 12, 31), jst(2027, 1, 2, 0, 0, 0)),
            (d(2028, 2, 27), jst(2028, 2, 29, 0, 0, 0)),
            (d(2028, 2, 28), jst(2028, 3, 1, 0, 0, 0)),
            (d(2028, 2, 29), jst(2028, 3, 2, 0, 0, 0)),
            (d(2027, 2, 28), jst(2027, 3, 2, 0, 0, 0)),
        ];
        for (visit, end) in cases {
            let mut i = input(ReceptionKind::DeviceFailure, jst(2026, 12, 1, 8, 0, 0));
            i.visit_date = Some(visit);
            assert_eq!(window(&i).end(), Some(end), "visit {visit}");
        }
        let mut i = input(ReceptionKind::OnlineCare, jst(2028, 2, 28, 9, 0, 0));
        i.visit_date = Some(d(2028, 2, 28));
        assert_eq!(
            window(&i).display_end_jst().as_deref(),
            Some("2028-02-29 23:59 JST")
        );
    }

    #[test]
    fn registration_after_the_end_gives_an_empty_window() {
        let mut i = input(ReceptionKind::OnlineCare, jst(2026, 11, 24, 0, 0, 0));
        i.visit_date = Some(d(2026, 11, 22));
        let w = window(&i);
        assert_eq!(
            w,
            Window::Empty {
                registered_at: jst(2026, 11, 24, 0, 0, 0),
                ends_by: WindowEnd::DayAfterVisit {
                    visit_date: d(2026, 11, 22)
                },
            }
        );
        assert!(!is_open(&w, jst(2026, 11, 24, 0, 0, 0)));
        assert_eq!(w.end(), None);
        // One second earlier still gives one second of access.
        i.registered_at = jst(2026, 11, 23, 23, 59, 59);
        assert!(is_open(&window(&i), jst(2026, 11, 23, 23, 59, 59)));
    }

    #[test]
    fn house_call_is_24_hours_across_month_end() {
        let w = window(&input(
            ReceptionKind::HouseCall,
            jst(2026, 3, 31, 23, 30, 15),
        ));
        assert_eq!(w.end(), Some(jst(2026, 4, 1, 23, 30, 15)));
        assert_eq!(
            w.last_second_jst(),
            Some(d(2026, 4, 1).and_hms_opt(23, 30, 14).expect("t"))
        );
        assert_eq!(w.display_end_jst().as_deref(), Some("2026-04-01 23:30 JST"));
    }

    #[test]
    fn eligibility_only_has_no_window() {
        let w = window(&input(
            ReceptionKind::EligibilityOnly,
            jst(2026, 5, 1, 9, 0, 0),
        ));
        assert_eq!(w, Window::NoMedicalInformation);
        assert!(!is_open(&w, jst(2026, 5, 1, 9, 0, 0)));
        assert_eq!(w.display_end_jst(), None);
    }

    #[test]
    fn home_visit_without_further_visits_ends_after_the_next_month() {
        // Registered in December; January passes with no visit: access ends at the end of January.
        let w = window(&input(
            ReceptionKind::HomeVisit,
            jst(2026, 12, 20, 14, 0, 0),
        ));
        assert_eq!(
            w,
            Window::Interval {
                start: jst(2026, 12, 20, 14, 0, 0),
                end: jst(2027, 2, 1, 0, 0, 0),
                ends_by: WindowEnd::MonthWithoutVisit {
                    month: YearMonth {
                        year: 2027,
                        month: 1
                    }
                },
            }
        );
        assert_eq!(w.display_end_jst().as_deref(), Some("2027-01-31 23:59 JST"));
    }

    #[test]
    fn home_visit_continues_month_by_month_and_a_gap_closes_it() {
        let mut i = input(ReceptionKind::HomeVisit, jst(2026, 1, 15, 10, 0, 0));
        i.home_visits = vec![d(2026, 2, 3), d(2026, 2, 17), d(2026, 3, 31)];
        // April has none: ends when April is over.
        assert_eq!(window(&i).end(), Some(jst(2026, 5, 1, 0, 0, 0)));
        // A visit in May, after the gap, does not reopen it.
        i.home_visits.push(d(2026, 5, 2));
        assert_eq!(window(&i).end(), Some(jst(2026, 5, 1, 0, 0, 0)));
        assert!(!is_open(&window(&i), jst(2026, 5, 2, 12, 0, 0)));
        // A visit on 30 April fills the gap, and May's visit then counts too.
        i.home_visits.push(d(2026, 4, 30));
        assert_eq!(window(&i).end(), Some(jst(2026, 7, 1, 0, 0, 0)));
        // Withdrawal ends it at once.
        i.withdrawn_at = Some(jst(2026, 4, 10, 9, 0, 0));
        let w = window(&i);
        assert_eq!(w.end(), Some(jst(2026, 4, 10, 9, 0, 0)));
        assert!(matches!(
            w,
            Window::Interval {
                ends_by: WindowEnd::Withdrawn,
                ..
            }
        ));
    }

    #[test]
    fn home_visit_across_year_end_and_february() {
        let mut i = input(ReceptionKind::HomeVisit, jst(2027, 11, 30, 23, 59, 0));
        i.home_visits = vec![d(2027, 12, 1), d(2028, 1, 31), d(2028, 2, 29)];
        assert_eq!(window(&i).end(), Some(jst(2028, 4, 1, 0, 0, 0)));
        assert_eq!(
            window(&i).display_end_jst().as_deref(),
            Some("2028-03-31 23:59 JST")
        );
    }

    #[test]
    fn cancelling_online_care_ends_it_early_and_withdrawal_at_registration_is_empty() {
        let mut i = input(ReceptionKind::OnlineCare, jst(2026, 6, 1, 9, 0, 0));
        i.visit_date = Some(d(2026, 6, 5));
        i.withdrawn_at = Some(jst(2026, 6, 2, 18, 0, 0));
        let w = window(&i);
        assert_eq!(w.end(), Some(jst(2026, 6, 2, 18, 0, 0)));
        assert_eq!(w.display_end_jst().as_deref(), Some("2026-06-02 17:59 JST"));
        // A withdrawal after the natural end changes nothing.
        i.withdrawn_at = Some(jst(2026, 6, 9, 0, 0, 0));
        assert!(matches!(
            window(&i),
            Window::Interval {
                ends_by: WindowEnd::DayAfterVisit { .. },
                ..
            }
        ));
        i.withdrawn_at = Some(i.registered_at);
        assert!(matches!(
            window(&i),
            Window::Empty {
                ends_by: WindowEnd::Withdrawn,
                ..
            }
        ));
    }

    #[test]
    fn serde_form_is_tagged_and_readable() {
        let mut i = input(ReceptionKind::OnlineCare, jst(2026, 11, 20, 10, 0, 0));
        i.visit_date = Some(d(2026, 11, 22));
        let w = window(&i);
        let json = serde_json::to_value(w).expect("serialise");
        assert_eq!(json["state"], "interval");
        assert_eq!(json["end"], "2026-11-23T15:00:00Z");
        assert_eq!(json["ends_by"]["reason"], "day_after_visit");
        assert_eq!(json["ends_by"]["visit_date"], "2026-11-22");
        let back: Window = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, w);
        let input_json = serde_json::to_string(&i).expect("serialise input");
        let input_back: WindowInput = serde_json::from_str(&input_json).expect("round trip");
        assert_eq!(input_back, i);
    }

    #[test]
    fn start_of_day_handles_the_skipped_midnights_of_1948_to_1951() {
        // 1949-04-03 00:00 did not exist in Tokyo (DST began at Saturday 24:00).
        let t = jst_start_of_day(d(1949, 4, 3));
        assert_eq!(to_jst(t).date_naive(), d(1949, 4, 3));
        assert_eq!(
            to_jst(t).time(),
            NaiveTime::from_hms_opt(1, 0, 0).expect("t")
        );
    }

    // ---- properties ----

    /// Instants between 2020 and 2035, to the second.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (1_577_836_800i64..2_082_758_400i64)
            .prop_map(|s| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::MIN_UTC))
    }

    /// Dates that favour month ends, year ends and leap days.
    fn date() -> impl Strategy<Value = NaiveDate> {
        prop_oneof![
            (2020i32..2036, 1u32..=12, 1u32..=31).prop_map(|(y, m, day)| {
                NaiveDate::from_ymd_opt(y, m, day)
                    .or_else(|| {
                        YearMonth { year: y, month: m }
                            .next()
                            .first_day()?
                            .pred_opt()
                    })
                    .unwrap_or(NaiveDate::MIN)
            }),
            (2020i32..2036)
                .prop_map(|y| NaiveDate::from_ymd_opt(y, 12, 31).unwrap_or(NaiveDate::MIN)),
            prop_oneof![
                Just(d(2024, 2, 29)),
                Just(d(2028, 2, 29)),
                Just(d(2028, 2, 28)),
                Just(d(2032, 2, 29))
            ],
        ]
    }

    fn kind() -> impl Strategy<Value = ReceptionKind> {
        proptest::sample::select(ReceptionKind::ALL.to_vec())
    }

    fn any_input() -> impl Strategy<Value = WindowInput> {
        (
            kind(),
            instant(),
            proptest::option::of(date()),
            proptest::collection::vec(date(), 0..30),
            proptest::option::of(instant()),
        )
            .prop_map(
                |(kind, registered_at, visit_date, home_visits, withdrawn_at)| WindowInput {
                    kind,
                    registered_at,
                    visit_date,
                    home_visits,
                    withdrawn_at,
                },
            )
    }

    proptest! {
        #[test]
        fn never_opens_before_registration_and_start_precedes_end(i in any_input(), now in instant()) {
            match window(&i) {
                Window::Interval { start, end, .. } => {
                    prop_assert_eq!(start, i.registered_at);
                    prop_assert!(start < end);
                }
                Window::Empty { registered_at, .. } => prop_assert_eq!(registered_at, i.registered_at),
                Window::NoMedicalInformation => prop_assert_eq!(i.kind, ReceptionKind::EligibilityOnly),
            }
            if now < i.registered_at {
                prop_assert!(!is_open(&window(&i), now));
            }
        }

        #[test]
        fn withdrawal_always_closes(i in any_input(), after in 0i64..200_000_000) {
            let Some(withdrawn) = i.withdrawn_at else { return Ok(()) };
            let w = window(&i);
            prop_assert!(!is_open(&w, withdrawn));
            prop_assert!(!is_open(&w, withdrawn + Duration::seconds(after)));
            if let Some(end) = w.end() {
                prop_assert!(end <= withdrawn);
            }
        }

        #[test]
        fn day_kinds_end_at_midnight_two_days_after_the_visit(
            k in proptest::sample::select(DAY_KINDS.to_vec()),
            registered in instant(),
            visit in date(),
        ) {
            let mut i = input(k, registered);
            i.visit_date = Some(visit);
            let end_day = visit + Duration::days(2);
            // Oracle: fixed +9 hours, independent of the tz database.
            let expected_end = Utc.from_utc_datetime(&(end_day.and_time(NaiveTime::MIN) - Duration::hours(9)));
            let w = window(&i);
            if registered < expected_end {
                prop_assert_eq!(w.end(), Some(expected_end));
                let last = w.last_second_jst();
                let expected_last = (visit + Duration::days(1)).and_hms_opt(23, 59, 59);
                prop_assert_eq!(last, expected_last);
                // Registration before a future visit date opens at once.
                prop_assert!(is_open(&w, registered));
                prop_assert!(is_open(&w, expected_end - Duration::seconds(1)));
                prop_assert!(!is_open(&w, expected_end));
            } else {
                prop_assert!(matches!(w, Window::Empty { .. }), "registration after the end must be empty");
                prop_assert!(!is_open(&w, registered));
            }
        }

        #[test]
        fn house_call_lasts_exactly_24_hours(registered in instant(), probe in 0i64..200_000) {
            let w = window(&input(ReceptionKind::HouseCall, registered));
            prop_assert_eq!(w.end(), Some(registered + Duration::hours(24)));
            prop_assert_eq!(is_open(&w, registered + Duration::seconds(probe)), probe < 86_400);
        }

        #[test]
        fn home_visit_each_month_keeps_it_open(
            registered in instant(),
            months in 0u32..40,
            day in 1u32..=31,
        ) {
            // A visit on some day of each of the `months` months after registration.
            let mut i = input(ReceptionKind::HomeVisit, registered);
            let mut m = YearMonth::of(jst_date(registered));
            for _ in 0..months {
                m = m.next();
                let first = m.first_day().unwrap_or(NaiveDate::MIN);
                let visit = NaiveDate::from_ymd_opt(m.year, m.month, day)
                    .unwrap_or_else(|| m.next().first_day().and_then(|n| n.pred_opt()).unwrap_or(first));
                i.home_visits.push(visit);
            }
            let gap = m.next();
            let end_month = gap.next();
            let expected_end = Utc.from_utc_datetime(
                &(NaiveDate::from_ymd_opt(end_month.year, end_month.month, 1).unwrap_or(NaiveDate::MIN)
                    .and_time(NaiveTime::MIN) - Duration::hours(9)),
            );
            let w = window(&i);
            prop_assert_eq!(w.end(), Some(expected_end));
            let closes_for_gap = matches!(
                w,
                Window::Interval { ends_by: WindowEnd::MonthWithoutVisit { month }, .. } if month == gap
            );
            prop_assert!(closes_for_gap, "must end for the gap month");
            // Open through the last second of the gap month, closed after.
            prop_assert!(is_open(&w, expected_end - Duration::seconds(1)));
            prop_assert!(!is_open(&w, expected_end));
        }

        #[test]
        fn home_visit_visits_after_a_gap_do_not_reopen(
            i in any_input().prop_map(|mut i| { i.kind = ReceptionKind::HomeVisit; i.withdrawn_at = None; i }),
            late in proptest::collection::vec(0i64..2_000, 1..10),
        ) {
            let w = window(&i);
            let Window::Interval { end, ends_by: WindowEnd::MonthWithoutVisit { month: gap }, .. } = w else {
                return Err(TestCaseError::fail("home visit must give an interval"));
            };
            // Visits dated in the gap month's successor or later: the window is already closed.
            let mut later = i.clone();
            for days in late {
                later.home_visits.push(jst_date(end) + Duration::days(days));
            }
            prop_assert_eq!(window(&later), w);
            // The registration month always counts: the window reaches at least the end of the
            // month after registration.
            prop_assert!(gap > YearMonth::of(jst_date(i.registered_at)));
        }

        #[test]
        fn serde_round_trip(i in any_input()) {
            let w = window(&i);
            let json = serde_json::to_string(&w).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: Window = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, w);
        }
    }
}
