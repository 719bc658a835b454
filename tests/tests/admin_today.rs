//! The wallboard's figures of today are kept by the engine from the ACD's events
//! (`admin/src/today.rs`) and equal what the statistics API computes from the stored events
//! of the day: after a burst of calls into `support` (sipp, the demo flow's option 2), and
//! again after a restart, when they are rebuilt from the database. The page gives its
//! counts as `data-today="offered answered within-SL abandoned overflowed"` per queue, and
//! says where they came from (`data-today-source`: `live`, or `stored` until the engine
//! has read the day); only live figures are compared.
//! Waits are polls of the engine's answers with deadlines.

use std::time::{Duration, Instant};

use svi_tests::admin::{console_engine, create_key, Api, Auth};
use svi_tests::config::prompt_len;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

const CALLS: u32 = 8;

/// The `support` figures of the wallboard page (the engine's running figures).
async fn page_figures(api: &Api, key: &str) -> Option<[u64; 5]> {
    let page = api
        .get("/ui/wallboard?part=main", Auth::Key(key))
        .await
        .text;
    // Only the engine's own figures: not those the page reads itself until it has them.
    if !page.contains("data-today-source=\"live\"") {
        return None;
    }
    let at = page.find("data-queue=\"support\"")?;
    let rest = &page[at..];
    let start = rest.find("data-today=\"")? + "data-today=\"".len();
    let values: Vec<u64> = rest[start..]
        .split('"')
        .next()?
        .split(' ')
        .filter_map(|v| v.parse().ok())
        .collect();
    values.try_into().ok()
}

/// The `support` figures of today from the stored events (`GET /api/v1/statistics`).
async fn stored_figures(api: &Api, key: &str, since: &str) -> Option<[u64; 5]> {
    let rows = api
        .get(
            &format!("/api/v1/statistics?queue=support&from={since}"),
            Auth::Key(key),
        )
        .await
        .json;
    let r = rows.as_array()?.first()?.clone();
    let n = |f: &str| r[f].as_u64();
    Some([
        n("offered")?,
        n("answered")?,
        n("answered_within_sl")?,
        n("abandoned")?,
        n("overflowed")?,
    ])
}

/// Polls both until the page shows `offered` calls and the figures agree; the last pair.
async fn agreeing(
    api: &Api,
    key: &str,
    since: &str,
    offered: u64,
) -> (Option<[u64; 5]>, Option<[u64; 5]>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = page_figures(api, key).await;
        let stored = stored_figures(api, key, since).await;
        let done = page.is_some_and(|p| p[0] == offered) && page == stored;
        if done || Instant::now() > deadline {
            return (page, stored);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wallboards_figures_of_today_equal_the_stored_ones_after_a_burst_and_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut key = String::new();
    let engine = console_engine(dir.path(), |data| {
        key = create_key(data, None, "supervisor", "wallboard");
    });
    let config = dir.path().join("svi.toml");
    let api = Api::new(&engine);
    // Midnight today is at most a day back: the statistics from then on are today's.
    let since = (chrono::Utc::now() - chrono::Duration::hours(26))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = None;
    while before.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        before = page_figures(&api, &key).await;
    }
    assert_eq!(before, Some([0; 5]), "no call yet, figures kept live");

    // A burst: CALLS callers key 2 for support at once; no agent is logged in, so each is
    // queued and sent back to the flow (overflow), which says so and hangs up.
    let caller = Caller::new(Codec::Pcma).dtmf(
        prompt_len("welcome") + Duration::from_secs(1),
        Dtmf::Info('2'),
    );
    let xml = caller.xml();
    let (sip, at) = (engine.sip, engine.dir.path().to_path_buf());
    let run =
        std::thread::spawn(move || Sipp::new(xml).calls(CALLS).with_media().run(&at, Some(sip)))
            .join()
            .expect("sipp");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let (page, stored) = agreeing(&api, &key, &since, u64::from(CALLS)).await;
    assert_eq!(
        page,
        stored,
        "running figures against the stored events\n{}",
        engine.log_text()
    );
    let figures = page.expect("figures");
    assert_eq!(figures[0], u64::from(CALLS), "offered");
    assert_eq!(figures[4], u64::from(CALLS), "overflowed: no agent");

    // A restart: the figures are read again from the database.
    let data = engine.data_dir();
    let (status, log) = engine.terminate(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        data_dir: Some(data),
        ..EngineOptions::default()
    });
    let api = Api::new(&engine);
    let (again, stored) = agreeing(&api, &key, &since, u64::from(CALLS)).await;
    assert_eq!(again, stored, "after the restart\n{}", engine.log_text());
    assert_eq!(again, Some(figures));
}
