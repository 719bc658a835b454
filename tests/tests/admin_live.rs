//! The admin API's live views and supervisor actions against a real `svi run` (issue 14,
//! acceptance 4): an agent's phone registers, a supervisor pauses the agent through the API,
//! a sipp caller keys 2 and waits in `support`; `/api/v1/queues` and `/api/v1/calls` show
//! it waiting, the event feed delivers the join; the supervisor makes the agent ready, the
//! agent answers, and the feed delivers the answer. Each event must reach the feed within
//! 1 s of the engine's own timestamp for it. After the call, its recording is listed and
//! sent whole and by byte range, each access audited.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use svi_tests::admin::{console_engine, create_key, Api, Auth, SseEvent};
use svi_tests::config::prompt_len;
use svi_tests::contact::register_phone;
use svi_tests::sipp::{Caller, Codec, Dtmf};

/// How late after the engine's timestamp an event reached this client, in milliseconds.
fn delay_ms(e: &SseEvent) -> i64 {
    let received = e
        .received
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    received - e.data["at"].as_i64().expect("the event's `at`")
}

fn acd_event<'a>(kind: &'a str, call: Option<&'a str>) -> impl Fn(&SseEvent) -> bool + 'a {
    move |e| {
        e.name == "acd"
            && e.data["event"] == kind
            && call.is_none_or(|c| e.data["call"].as_str() == Some(c))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_call_is_seen_waiting_and_its_join_and_answer_reach_the_feed_within_1_s() {
    let (mut key, mut agent_key, mut auditor) = (String::new(), String::new(), String::new());
    let dir = tempfile::tempdir().expect("tmp");
    let engine = console_engine(dir.path(), |data| {
        key = create_key(data, None, "supervisor", "wallboard");
        agent_key = create_key(data, None, "agent", "softphone");
        auditor = create_key(data, None, "auditor", "audit");
    });
    let api = Api::new(&engine);
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(40));

    // Supervisor actions: bad input is refused field by field, an unknown agent is 404.
    let path = "/api/v1/agents/1001/state";
    let no_reason = api
        .send(
            "POST",
            path,
            Auth::Key(&key),
            Some(&json!({"action": "pause"})),
        )
        .await;
    assert_eq!(
        (no_reason.status, no_reason.json["field"].as_str()),
        (400, Some("reason")),
        "{}",
        no_reason.text
    );
    let unknown = api
        .send(
            "POST",
            "/api/v1/agents/9999/state",
            Auth::Key(&key),
            Some(&json!({"action": "ready"})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let agent_role = api
        .send(
            "POST",
            path,
            Auth::Key(&agent_key),
            Some(&json!({"action": "ready"})),
        )
        .await;
    assert_eq!(agent_role.status, 403, "{}", agent_role.text);
    let paused = api
        .send(
            "POST",
            path,
            Auth::Key(&key),
            Some(&json!({"action": "pause", "reason": "break"})),
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(
        (&paused.json["state"], &paused.json["pause_reason"]),
        (&json!("not_ready"), &json!("break")),
        "{}",
        paused.text
    );

    let mut feed = api.events("/api/v1/events", &key).await;
    let ready = feed
        .next(Duration::from_secs(5))
        .await
        .expect("ready event");
    assert_eq!(ready.name, "ready", "{ready:?}");

    // The caller keys 2 after the welcome and waits: nobody is ready.
    let mut caller = Caller::new(Codec::Pcma).dtmf(
        prompt_len("welcome") + Duration::from_secs(1),
        Dtmf::Info('2'),
    );
    caller.hangup_after = Some(Duration::from_secs(12));
    let call = caller.spawn_call(engine.dir.path(), engine.sip);

    let queued = feed
        .find(Duration::from_secs(20), acd_event("call_queued", None))
        .await
        .unwrap_or_else(|| panic!("no call_queued event\n{}", engine.log_text()));
    assert_eq!(queued.data["queue"], "support", "{queued:?}");
    assert!(
        delay_ms(&queued) <= 1000,
        "join {} ms late",
        delay_ms(&queued)
    );
    let id = queued.data["call"].as_str().expect("call id").to_string();

    let queues = api.get("/api/v1/queues", Auth::Key(&key)).await;
    assert_eq!(queues.status, 200, "{}", queues.text);
    let support = queues
        .json
        .as_array()
        .and_then(|q| q.iter().find(|q| q["id"] == "support"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(support["waiting"], 1, "{}", queues.text);
    assert_eq!(support["calls"][0]["call"], id.as_str(), "{}", queues.text);
    assert_eq!(support["calls"][0]["state"], "waiting", "{}", queues.text);
    assert_eq!(support["calls"][0]["position"], 1, "{}", queues.text);
    // An agent's account sees the queues too, not the calls' numbers.
    let as_agent = api.get("/api/v1/queues", Auth::Key(&agent_key)).await;
    assert_eq!(as_agent.status, 200, "{}", as_agent.text);
    assert_eq!(
        api.get("/api/v1/calls", Auth::Key(&agent_key)).await.status,
        403
    );
    let waiting = api
        .get(&format!("/api/v1/calls/{id}"), Auth::Key(&key))
        .await;
    assert_eq!(waiting.status, 200, "{}", waiting.text);
    assert_eq!(
        (
            &waiting.json["phase"],
            &waiting.json["queue"],
            &waiting.json["position"]
        ),
        (&json!("queued"), &json!("support"), &json!(1)),
        "{}",
        waiting.text
    );

    // The supervisor makes the agent ready: the engine rings the phone, which answers.
    let ready = api
        .send(
            "POST",
            path,
            Auth::Key(&key),
            Some(&json!({"action": "ready"})),
        )
        .await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let answered = feed
        .find(
            Duration::from_secs(20),
            acd_event("call_answered", Some(&id)),
        )
        .await
        .unwrap_or_else(|| panic!("no call_answered event\n{}", engine.log_text()));
    assert_eq!(answered.data["agent"], "1001", "{answered:?}");
    assert!(
        delay_ms(&answered) <= 1000,
        "answer {} ms late",
        delay_ms(&answered)
    );

    // On the call, given by its agent: the recording paused and resumed (the sample
    // configuration records the support queue's calls).
    let recording = |pause: bool| {
        let api = &api;
        let key = &key;
        async move {
            api.send(
                "POST",
                "/api/v1/calls/1001/recording",
                Auth::Key(key),
                Some(&json!({ "pause": pause })),
            )
            .await
        }
    };
    let paused = recording(true).await;
    assert_eq!(
        (paused.status, &paused.json["outcome"], &paused.json["call"]),
        (200, &json!("recording_paused"), &json!(id.as_str())),
        "{}",
        paused.text
    );
    let resumed = recording(false).await;
    assert_eq!(
        resumed.json["outcome"], "recording_resumed",
        "{}",
        resumed.text
    );
    // A supervisor's phone outside `sip.allowed_networks` is never called.
    let outside = api
        .send(
            "POST",
            &format!("/api/v1/calls/{id}/supervise"),
            Auth::Key(&key),
            Some(&json!({"mode": "listen", "target": "sip:boss@192.0.2.7"})),
        )
        .await;
    assert_eq!(
        (outside.status, outside.json["field"].as_str()),
        (400, Some("target")),
        "{}",
        outside.text
    );
    let on_call = api.get("/api/v1/calls", Auth::Key(&key)).await;
    let view = on_call
        .json
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(view["agent"], "1001", "{}", on_call.text);

    let run = call.join().expect("caller");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let phone = phone.join().expect("phone");
    assert!(phone.success(), "{}\n{}", phone.report(), engine.log_text());
    let ended = feed
        .find(Duration::from_secs(10), |e| {
            e.name == "call" && e.data["event"] == "ended" && e.data["call"] == id.as_str()
        })
        .await;
    assert!(ended.is_some(), "no call ended event");

    // The call's recording: listed once the call has ended, sent whole or by byte range,
    // to the roles that may hear it, and every access is in the audit log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let entry = loop {
        every.tick().await;
        let list = api.get("/api/v1/recordings", Auth::Key(&key)).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let found = list
            .json
            .as_array()
            .and_then(|l| l.iter().find(|r| r["call"] == id.as_str()).cloned());
        if let Some(found) = found {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording of {id}: {}",
            list.text
        );
    };
    let bytes = entry["bytes"].as_u64().expect("bytes");
    assert!(bytes > 44, "{entry}");
    let audio = format!("/api/v1/recordings/{id}/audio");
    let (status, headers, whole) = api.get_bytes(&audio, &key, None).await;
    assert_eq!((status, whole.len() as u64), (200, bytes), "{headers:?}");
    assert_eq!(&whole[..4], b"RIFF");
    assert_eq!(headers["content-type"], "audio/wav");
    let (status, headers, head) = api.get_bytes(&audio, &key, Some("bytes=0-11")).await;
    assert_eq!(status, 206, "{headers:?}");
    assert_eq!(head, whole[..12]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 0-11/{bytes}").as_str()
    );
    let (status, _, tail) = api.get_bytes(&audio, &key, Some("bytes=-100")).await;
    assert_eq!((status, &tail[..]), (206, &whole[whole.len() - 100..]));
    let (status, headers, _) = api
        .get_bytes(&audio, &key, Some(&format!("bytes={bytes}-")))
        .await;
    assert_eq!(status, 416, "{headers:?}");
    assert_eq!(
        headers["content-range"],
        format!("bytes */{bytes}").as_str()
    );
    let (status, _, _) = api.get_bytes(&audio, &agent_key, None).await;
    assert_eq!(status, 403);
    let (status, _, _) = api
        .get_bytes("/api/v1/recordings/0000000000000000/audio", &key, None)
        .await;
    assert_eq!(status, 404);
    // Five reads of the file: four by the supervisor's key, one refused to the agent's.
    let target = format!(",/api/v1/recordings/{id}/audio,");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let audit = loop {
        every.tick().await;
        let audit = api
            .get("/api/v1/audit?format=csv", Auth::Key(&auditor))
            .await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        if audit.text.matches(&target).count() >= 5 || tokio::time::Instant::now() > deadline {
            break audit.text;
        }
    };
    let reads: Vec<&str> = audit.lines().filter(|l| l.contains(&target)).collect();
    assert_eq!(reads.len(), 5, "{audit}");
    assert_eq!(
        reads.iter().filter(|l| l.contains(",denied,")).count(),
        2,
        "{audit}"
    );
}
