//! sipp scenarios written by the tests, and running sipp with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_sip_port;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcma,
    Pcmu,
}

impl Codec {
    pub fn pt(self) -> u8 {
        match self {
            Codec::Pcma => 8,
            Codec::Pcmu => 0,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
        }
    }
}

/// How the caller sends a digit.
#[derive(Debug, Clone)]
pub enum Dtmf {
    /// RFC 4733 events from a pcap file (sipp ships dtmf_2833_<digit>.pcap).
    Rfc2833Pcap(PathBuf),
    /// SIP INFO with application/dtmf-relay.
    Info(char),
    /// In-band tones: a pcap of G.711 RTP made by `pcap::write_rtp_pcap`.
    InbandPcap(PathBuf),
}

/// sipp's own RFC 4733 pcap for a digit.
pub fn sipp_dtmf_pcap(digit: char) -> PathBuf {
    PathBuf::from(format!("/usr/share/sip-tester/dtmf_2833_{digit}.pcap"))
}

/// A caller: INVITE with SDP, ACK, then for each step a pause and a digit, then waits for
/// the engine's BYE (answered 200).
#[derive(Debug, Clone)]
pub struct Caller {
    pub codec: Codec,
    pub service: String,
    pub steps: Vec<(Duration, Dtmf)>,
    /// How long to wait for the engine's BYE after the last step.
    pub bye_timeout: Duration,
    /// Hang up ourselves after this pause instead of waiting for the engine's BYE.
    pub hangup_after: Option<Duration>,
    /// Raw scenario elements played after the digits (e.g. answering a REFER).
    pub raw: Vec<String>,
}

impl Caller {
    pub fn new(codec: Codec) -> Caller {
        Caller {
            codec,
            service: "100".into(),
            steps: Vec::new(),
            bye_timeout: Duration::from_secs(40),
            hangup_after: None,
            raw: Vec::new(),
        }
    }

    pub fn dtmf(mut self, after: Duration, d: Dtmf) -> Caller {
        self.steps.push((after, d));
        self
    }

    /// One call of this caller with media to `target`, on its own thread, so that a test can
    /// watch the engine (a feed, a page) while the call goes on; join for its result.
    pub fn spawn_call(&self, dir: &Path, target: SocketAddr) -> std::thread::JoinHandle<SippRun> {
        let (xml, dir) = (self.xml(), dir.to_path_buf());
        std::thread::spawn(move || Sipp::new(xml).calls(1).with_media().run(&dir, Some(target)))
    }

    pub fn xml(&self) -> String {
        let pt = self.codec.pt();
        let name = self.codec.name();
        let mut x = format!(
            r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="svi caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt} 101
a=rtpmap:{pt} {name}/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"#
        );
        for (i, (pause, dtmf)) in self.steps.iter().enumerate() {
            x.push_str(&format!(
                "  <pause milliseconds=\"{}\"/>\n",
                pause.as_millis()
            ));
            match dtmf {
                Dtmf::Rfc2833Pcap(p) | Dtmf::InbandPcap(p) => {
                    x.push_str(&format!(
                        "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
                        p.display()
                    ));
                }
                Dtmf::Info(d) => x.push_str(&format!(
                    r#"  <send retrans="500"><![CDATA[
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
[routes]
Call-ID: [call_id]
CSeq: {cseq} INFO
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={d}
Duration=160
]]></send>
  <recv response="200"/>
"#,
                    cseq = 2 + i
                )),
            }
        }
        for r in &self.raw {
            x.push_str(r);
        }
        match self.hangup_after {
            Some(p) => x.push_str(&format!(
                r#"  <pause milliseconds="{}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
[routes]
Call-ID: [call_id]
CSeq: 50 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"#,
                p.as_millis()
            )),
            None => x.push_str(&format!(
                r#"  <recv request="BYE" timeout="{}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"#,
                self.bye_timeout.as_millis()
            )),
        }
        x.push_str(
            "  <ResponseTimeRepartition value=\"10, 20, 50, 100, 200, 500, 1000\"/>\n</scenario>\n",
        );
        x
    }
}

/// A registrar (the IPBX side) for one client: challenges the first REGISTER (digest, MD5),
/// checks the credentials of the next ones with sipp's `verifyauth` (a failed check fails
/// the scenario), grants `expires` seconds, accepts one refresh, then the unregistration.
pub fn registrar_xml(username: &str, password: &str, expires: u32) -> String {
    let ok = |exp: u32| {
        format!(
            r#"  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=reg[pid]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:]
Expires: {exp}
Content-Length: 0

]]></send>
"#
        )
    };
    let checked = |what: &str| {
        format!(
            r#"  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="{username}" password="{password}"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="{what}_ok"/>
  <nop hide="true" next="bad"/>
  <label id="{what}_ok"/>
"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="svi registrar">
  <recv request="REGISTER"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=reg[pid]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="test.example", nonce="[pid]n[clock_tick]", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
{first}{ok_first}{refresh}{ok_refresh}{unreg}{ok_unreg}  <nop hide="true" next="end"/>
  <label id="bad"/>
  <send><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=reg[pid]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <nop><action><exec int_cmd="stop_now"/></action></nop>
  <label id="end"/>
</scenario>
"#,
        first = checked("first"),
        ok_first = ok(expires),
        refresh = checked("refresh"),
        ok_refresh = ok(expires),
        unreg = checked("unreg"),
        ok_unreg = ok(0),
    )
}

pub struct SippRun {
    pub output: Output,
    pub trace_dir: PathBuf,
}

impl SippRun {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    pub fn report(&self) -> String {
        let mut s = format!(
            "sipp exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        );
        if let Ok(entries) = std::fs::read_dir(&self.trace_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with("_errors.log") || name.ends_with("_error_codes.csv") {
                    s.push_str(&format!(
                        "\n--- {name}:\n{}",
                        crate::proc::read_to_string(&e.path())
                    ));
                }
            }
        }
        s
    }

    /// The `-trace_msg` log (every message sent and received), for detailed assertions.
    pub fn messages(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.trace_dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with("_messages.log") {
                    all.push_str(&crate::proc::read_to_string(&e.path()));
                }
            }
        }
        all
    }
}

/// Options of one sipp run.
pub struct Sipp {
    pub scenario: String,
    pub args: Vec<String>,
    pub timeout: Duration,
}

impl Sipp {
    pub fn new(scenario_xml: String) -> Sipp {
        Sipp {
            scenario: scenario_xml,
            args: Vec::new(),
            timeout: Duration::from_secs(90),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Sipp {
        self.args.push(a.into());
        self
    }

    /// `N` calls (`-m N`) from loopback (`-i 127.0.0.1`).
    pub fn calls(self, n: u32) -> Sipp {
        self.arg("-m").arg(n.to_string()).arg("-i").arg("127.0.0.1")
    }

    /// RTP on loopback from a free port (`-mi`, `-mp`).
    pub fn with_media(self) -> Sipp {
        let port = crate::ports::free_sip_port();
        self.arg("-mi")
            .arg("127.0.0.1")
            .arg("-mp")
            .arg(port.to_string())
    }

    /// Runs sipp as a caller towards `target` (or as a server with `-sf` only when target is
    /// None), in `dir`, with message tracing; waits at most `timeout`.
    pub fn run(self, dir: &Path, target: Option<SocketAddr>) -> SippRun {
        let trace_dir = dir.join(format!("sipp-{}", free_sip_port()));
        std::fs::create_dir_all(&trace_dir).expect("sipp dir");
        let scenario = trace_dir.join("scenario.xml");
        std::fs::write(&scenario, &self.scenario).expect("write scenario");
        let mut cmd = Command::new("sipp");
        if let Some(t) = target {
            cmd.arg(t.to_string());
        }
        cmd.arg("-sf").arg(&scenario);
        cmd.args(["-nostdin", "-trace_msg", "-trace_err", "-timeout_error"]);
        cmd.arg("-timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)));
        cmd.args(&self.args);
        cmd.current_dir(&trace_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .expect("spawn sipp (is sip-tester installed? the test script installs it)");
        let deadline = Instant::now() + self.timeout + Duration::from_secs(10);
        let output = wait_output(child, deadline);
        SippRun { output, trace_dir }
    }
}

fn wait_output(child: std::process::Child, deadline: Instant) -> Output {
    // sipp exits by itself (-timeout); the deadline is a safety net. A thread owns the child
    // so its pipes are drained while we wait on the channel with a timeout.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(Ok(output)) => output,
        _ => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            rx.recv()
                .ok()
                .and_then(Result::ok)
                .expect("sipp output after kill")
        }
    }
}

/// An agent's phone registering with the engine: REGISTER, the 401 answered with sipp's
/// digest (MD5), 200. Its Contact points at `contact_port`, where `agent_phone_xml` listens.
pub fn agent_register_xml(user: &str, password: &str, contact_port: u16) -> String {
    let register = |cseq: u32, auth: &str| {
        format!(
            r#"  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]r
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@127.0.0.1:{contact_port}>
Expires: 300
{auth}Max-Forwards: 70
Content-Length: 0

]]></send>
"#
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"agent register\">\n{}  <recv response=\"401\" auth=\"true\"/>\n{}  <recv response=\"200\"/>\n</scenario>\n",
        register(1, ""),
        register(2, &format!("[authentication username={user} password={password}]\n"))
    )
}

/// An agent's phone: rings, answers with PCMA, then waits for the engine's BYE.
pub fn agent_phone_xml(user: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agent phone">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]agent[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{user}@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]agent[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{user}@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE" timeout="60000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"#
    )
}
