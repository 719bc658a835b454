//! The pages' languages: one catalogue per language (`i18n/en.txt`, `i18n/fr.txt`, `key =
//! text` lines, embedded in the binary), the language from the `svi_lang` cookie (the
//! switch in every page) or else the browser's `Accept-Language`, and numbers, durations
//! and times written the way each language writes them, in the zone `[admin] timezone`
//! names (the reader's `Reader::zone`; Europe/Paris by default).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The cookie the language switch sets (`fr` or `en`).
pub const LANG_COOKIE: &str = "svi_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

const EN: &str = include_str!("i18n/en.txt");
const FR: &str = include_str!("i18n/fr.txt");

fn parse(text: &'static str) -> HashMap<&'static str, &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn catalogue(lang: Lang) -> &'static HashMap<&'static str, &'static str> {
    static EN_MAP: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    static FR_MAP: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    match lang {
        Lang::En => EN_MAP.get_or_init(|| parse(EN)),
        Lang::Fr => FR_MAP.get_or_init(|| parse(FR)),
    }
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// A language code as stored and as the cookie holds it: `fr` or `en`, exactly.
    pub fn parse(code: &str) -> Option<Lang> {
        [Lang::Fr, Lang::En].into_iter().find(|l| l.code() == code)
    }

    /// The `Set-Cookie` value that makes `self` the language of this browser's pages.
    pub fn cookie(self) -> String {
        format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict; Secure",
            self.code()
        )
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The text of `key`; a key missing from the catalogue shows as itself (a unit test
    /// checks that every key the pages use is in both catalogues).
    pub fn t(self, key: &'static str) -> &'static str {
        catalogue(self).get(key).copied().unwrap_or(key)
    }

    /// The language of a request: the `svi_lang` cookie, else the `Accept-Language` entry
    /// with the highest weight that names French or English, else French (the engine's
    /// users speak French first).
    pub fn of(headers: &axum::http::HeaderMap) -> Lang {
        let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
        let cookie = text(axum::http::header::COOKIE).and_then(|c| {
            c.split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| *k == LANG_COOKIE)
                .and_then(|(_, v)| Lang::from_tag(v))
        });
        cookie
            .or_else(|| text(axum::http::header::ACCEPT_LANGUAGE).and_then(Lang::accepted))
            .unwrap_or(Lang::Fr)
    }

    fn accepted(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// A ratio (0-1) as a percentage with one decimal: `92.5%`, `92,5 %`.
    pub fn percent(self, ratio: f64) -> String {
        let text = format!("{:.1}", ratio * 100.0);
        match self {
            Lang::En => format!("{text}%"),
            Lang::Fr => format!("{}\u{a0}%", text.replace('.', ",")),
        }
    }

    /// A time of day in `zone`, 24-hour in both languages.
    pub fn time(self, zone: Tz, at: DateTime<Utc>) -> String {
        at.with_timezone(&zone).format("%H:%M:%S").to_string()
    }

    /// A date and time of day in `zone`: `07/12/2026 13:00`, `2026-12-07 13:00`.
    pub fn date_time(self, zone: Tz, at: DateTime<Utc>) -> String {
        let format = match self {
            Lang::Fr => "%d/%m/%Y %H:%M",
            Lang::En => "%Y-%m-%d %H:%M",
        };
        at.with_timezone(&zone).format(format).to_string()
    }
}

/// The day `at` falls on in `zone`.
pub fn day_of(zone: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

/// The instant `day` starts in `zone`: its midnight, or the first instant after it where a
/// clock change skips midnight; `None` only for a date out of chrono's range.
pub fn day_start(zone: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    (0..=2)
        .filter_map(|h| day.and_hms_opt(h, 0, 0))
        .find_map(|t| zone.from_local_datetime(&t).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// Where "today" starts for the pages: midnight in `zone` of the day `now` falls on (24
/// hours back should the date be out of range).
pub fn today_start(zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    day_start(zone, day_of(zone, now)).unwrap_or(now - Duration::hours(24))
}

/// A duration as `m:ss`, or `h:mm:ss` from an hour on (the same in both languages).
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap, HeaderValue};

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn both_catalogues_hold_the_same_keys_and_every_key_the_pages_use() {
        let (en, fr) = (parse(EN), parse(FR));
        let mut en_keys: Vec<_> = en.keys().collect();
        let mut fr_keys: Vec<_> = fr.keys().collect();
        en_keys.sort();
        fr_keys.sort();
        assert_eq!(en_keys, fr_keys);
        assert!(en.values().chain(fr.values()).all(|v| !v.is_empty()));
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web");
        let mut used = 0;
        for entry in std::fs::read_dir(dir).expect("src/web") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("source");
            for piece in source.split(".t(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or_default();
                assert!(en.contains_key(key), "{key} ({})", path.display());
                used += 1;
            }
        }
        assert!(used > 40, "{used} keys used");
    }

    #[test]
    fn the_cookie_wins_then_the_heaviest_accepted_language_then_french() {
        let al = header::ACCEPT_LANGUAGE;
        assert_eq!(Lang::of(&headers(&[])), Lang::Fr);
        assert_eq!(
            Lang::of(&headers(&[(al.clone(), "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[(al.clone(), "de-DE, en;q=0.5, fr-CA;q=0.8")])),
            Lang::Fr
        );
        assert_eq!(
            Lang::of(&headers(&[(al.clone(), "de, it;q=0.4")])),
            Lang::Fr
        );
        assert_eq!(
            Lang::of(&headers(&[(al.clone(), "fr;q=0, en;q=0.1")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[
                (al, "en-GB"),
                (header::COOKIE, "a=b; svi_lang=fr")
            ])),
            Lang::Fr
        );
    }

    #[test]
    fn numbers_durations_and_times_are_written_per_language_in_the_configured_zone() {
        assert_eq!(Lang::En.percent(0.925), "92.5%");
        assert_eq!(Lang::Fr.percent(0.925), "92,5\u{a0}%");
        assert_eq!(duration(65_400), "1:05");
        assert_eq!(duration(3_726_000), "1:02:06");
        // 7 December: Paris is UTC+1; 7 July: UTC+2.
        let winter = DateTime::from_timestamp(1_796_644_800, 0).expect("t");
        assert_eq!(winter.format("%m-%d %H:%M").to_string(), "12-07 12:00");
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(Lang::Fr.time(paris, winter), "13:00:00");
        let summer = DateTime::from_timestamp(1_783_425_600, 0).expect("t");
        assert_eq!(summer.format("%m-%d %H:%M").to_string(), "07-07 12:00");
        assert_eq!(Lang::En.time(paris, summer), "14:00:00");
        assert_eq!(Lang::Fr.date_time(paris, winter), "07/12/2026 13:00");
        assert_eq!(Lang::En.date_time(paris, summer), "2026-07-07 14:00");
        // New York is UTC-5 in December, UTC-4 in July.
        let new_york = chrono_tz::America::New_York;
        assert_eq!(Lang::Fr.time(new_york, winter), "07:00:00");
        assert_eq!(Lang::En.time(new_york, summer), "08:00:00");
        assert_eq!(Lang::Fr.date_time(new_york, winter), "07/12/2026 07:00");
        assert_eq!(Lang::Fr.t("nav.calls"), "Appels en cours");
        assert_eq!(Lang::En.t("nav.calls"), "Calls in progress");
    }

    #[test]
    fn today_starts_at_midnight_in_the_configured_zone() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("rfc 3339")
                .with_timezone(&Utc)
        };
        let (paris, new_york) = (chrono_tz::Europe::Paris, chrono_tz::America::New_York);
        // 7 December 2026, 03:30 UTC: already the 7th in Paris, still the 6th in New York.
        let now = at("2026-12-07T03:30:00Z");
        assert_eq!(today_start(paris, now), at("2026-12-06T23:00:00Z"));
        assert_eq!(today_start(new_york, now), at("2026-12-06T05:00:00Z"));
        assert_eq!(day_of(new_york, now).to_string(), "2026-12-06");
        // At 06:00 UTC New York has moved on to the 7th.
        let later = at("2026-12-07T06:00:00Z");
        assert_eq!(today_start(new_york, later), at("2026-12-07T05:00:00Z"));
        // The day the clocks go back is 25 hours long in both zones.
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let hours = |z: Tz, a: &str, b: &str| {
            (day_start(z, d(b)).expect("b") - day_start(z, d(a)).expect("a")).num_hours()
        };
        assert_eq!(hours(paris, "2026-10-25", "2026-10-26"), 25);
        assert_eq!(hours(new_york, "2026-11-01", "2026-11-02"), 25);
        assert_eq!(hours(new_york, "2026-10-25", "2026-10-26"), 24);
        // A zone whose clocks skip midnight: Santiago moved from 00:00 to 01:00 on
        // 6 September 2026, so that day starts at 01:00 local.
        let santiago = chrono_tz::America::Santiago;
        let start = day_start(santiago, d("2026-09-06")).expect("start");
        assert_eq!(
            start.with_timezone(&santiago).format("%H:%M").to_string(),
            "01:00"
        );
    }
}
