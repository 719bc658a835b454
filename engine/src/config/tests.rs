use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<EngineConfig, ConfigError> {
    EngineConfig::parse(text, Path::new("t.toml"), Path::new("/base"))
}

#[test]
fn defaults() {
    let c = parse("").expect("empty config is valid");
    assert_eq!(
        c.sip.listen,
        "127.0.0.1:5060".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!((c.rtp.port_low, c.rtp.port_high), (20000, 29999));
    assert_eq!(c.data_dir, PathBuf::from("/base/svi-data"));
    assert_eq!(c.flow_for("123"), "demo");
}

#[test]
fn errors_name_file_and_key() {
    let e = parse("[sip]\nlisten = \"5060\"\n")
        .expect_err("bad listen")
        .to_string();
    assert_eq!(
        e,
        "t.toml: sip.listen: `5060` is not IP:PORT (e.g. 127.0.0.1:5060)"
    );
    let e = parse("[rtp]\nports = \"30000-20000\"\n")
        .expect_err("bad range")
        .to_string();
    assert!(e.starts_with("t.toml: rtp.ports: `30000-20000`"), "{e}");
    let e = parse("[sip]\nlisen = \"x\"\n")
        .expect_err("typo")
        .to_string();
    assert!(e.contains("t.toml") && e.contains("lisen"), "{e}");
    let e = parse("[[trunks]]\nname='a'\nregistrar='pbx'\nusername='u'\npassword='p'\n")
        .expect_err("trunk")
        .to_string();
    assert!(e.contains("trunks[0].registrar"), "{e}");
}

#[test]
fn routes_pick_flows() {
    let c = parse("[[routes]]\nnumber = \"33*\"\nflow = \"fr\"\n[[routes]]\nnumber = \"100\"\nflow = \"hundred\"\n").expect("routes");
    assert_eq!(c.flow_for("3312"), "fr");
    assert_eq!(c.flow_for("100"), "hundred");
    assert_eq!(c.flow_for("200"), "demo");
}

#[test]
fn srtp_policies_by_trunk_address_agent_and_default() {
    use ::sip::sdp::SrtpPolicy;
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    assert_eq!(parse("").expect("valid").rtp.srtp, SrtpPolicy::Optional);
    let c = parse(
        "[rtp]\nsrtp = 'off'\n\
         [[trunks]]\nname='cucm'\nregistrar='sip:192.0.2.10:5061'\nusername='u'\npassword='p'\nsrtp='required'\n\
         [[trunks]]\nname='oxe'\nregistrar='sip:pbx.example.com'\nusername='u'\npassword='p'\nsrtp='optional'\nnetworks=['198.51.100.0/28']\n\
         [[agents]]\nid='1001'\npassword='secret-1'\nsrtp='required'\n\
         [[agents]]\nid='1002'\npassword='secret-2'\n",
    )
    .expect("valid");
    assert_eq!(c.srtp_for_peer(ip("192.0.2.10")), SrtpPolicy::Required);
    assert_eq!(c.srtp_for_peer(ip("198.51.100.3")), SrtpPolicy::Optional);
    assert_eq!(
        c.srtp_for_peer(ip("192.0.2.11")),
        SrtpPolicy::Off,
        "no trunk: the default"
    );
    assert_eq!(c.srtp_for_agent("1001"), SrtpPolicy::Required);
    assert_eq!(c.srtp_for_agent("1002"), SrtpPolicy::Off);

    for (text, key) in [
        ("[rtp]\nsrtp = 'yes'\n", "rtp.srtp"),
        (
            "[[trunks]]\nname='a'\nregistrar='sip:192.0.2.1'\nusername='u'\npassword='p'\nsrtp='mandatory'\n",
            "trunks[0].srtp",
        ),
        (
            "[[trunks]]\nname='a'\nregistrar='sip:192.0.2.1'\nusername='u'\npassword='p'\nnetworks=['x']\n",
            "trunks[0].networks[0]",
        ),
        ("[[agents]]\nid='1'\npassword='secret'\nsrtp=true\n", "agents[0].srtp"),
    ] {
        let e = parse(text).expect_err(key).to_string();
        assert!(e.starts_with(&format!("t.toml: {key}: ")), "{e}");
    }
}

#[test]
fn backup_schedule() {
    let c = parse("").expect("no [backup]");
    assert_eq!(c.backup.schedule(Path::new("/d")), None);
    assert_eq!(c.backup.dir(Path::new("/d")), PathBuf::from("/d/backups"));
    let c = parse("[backup]\ndir = \"b\"\nevery_hours = 72\nkeep = 3\n").expect("schedule");
    let s = c.backup.schedule(Path::new("/d")).expect("scheduled");
    assert_eq!(s.dir, PathBuf::from("/base/b"));
    assert_eq!(s.every, std::time::Duration::from_secs(72 * 3600));
    assert_eq!((s.keep, s.recordings), (3, false));
    for bad in ["every_hours = 0", "keep = 0", "every = 3"] {
        let e = parse(&format!("[backup]\n{bad}\n"))
            .expect_err(bad)
            .to_string();
        assert!(e.contains("backup") || e.contains("every"), "{bad}: {e}");
    }
}

#[test]
fn admin_is_https_on_loopback_by_default_and_checked() {
    let c = parse("").expect("defaults");
    assert!(c.admin.enabled);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(
        (c.admin.tls_files.clone(), c.admin.http_redirect),
        (None, None)
    );
    let c = parse(
        "[admin]\nlisten='0.0.0.0:9443'\ncert='tls/a.crt'\nkey='/k.pem'\nhttp_redirect='0.0.0.0:8080'\n",
    )
    .expect("valid");
    assert_eq!(
        c.admin.tls_files,
        Some((PathBuf::from("/base/tls/a.crt"), PathBuf::from("/k.pem")))
    );
    assert_eq!(c.admin.http_redirect.map(|a| a.port()), Some(8080));
    for (text, key) in [
        ("[admin]\nlisten='8443'\n", "admin.listen"),
        ("[admin]\ncert='a.crt'\n", "admin.cert"),
        (
            "[admin]\nhttp_redirect='127.0.0.1:8443'\n",
            "admin.http_redirect",
        ),
        (
            "[admin]\nsession_idle_minutes=0\n",
            "admin.session_idle_minutes",
        ),
    ] {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.starts_with(&format!("t.toml: {key}: ")), "{e}");
    }
}
