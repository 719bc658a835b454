//! The baseline: `svi-load echo`, a minimal UDP echo with the engine's socket layout (one
//! socket per call) and nothing else: each datagram is sent back to its source as soon as
//! it is read. Driven by the same generator at the same packet rate as the engine, its CPU
//! time is the cost floor of moving those packets through the kernel with tokio, and the
//! engine's CPU per packet is reported as a ratio to it, which holds on a noisy machine.
//!
//! It runs on a single-threaded tokio runtime (the cheapest way to wait on many sockets:
//! one epoll, no cross-thread wake-ups), prints its ports as one JSON line, and stops when
//! its standard input closes (the generator holds it) or after `--max-secs`.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, ChildStdin, Command};

use crate::args::Args;

pub const USAGE: &str = "svi-load echo [--sockets N] [--ip 127.0.0.1] [--max-secs 1800]";

pub fn main(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &["sockets", "ip", "max-secs"], &[])?;
    let sockets: usize = a.get("sockets", 100)?;
    if sockets == 0 || sockets > 20_000 {
        bail!("--sockets must be in 1..=20000");
    }
    let ip: IpAddr = a.get("ip", IpAddr::from([127, 0, 0, 1]))?;
    let max = Duration::from_secs(a.get("max-secs", 1800u64)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(sockets, ip, max))
}

async fn serve(count: usize, ip: IpAddr, max: Duration) -> Result<()> {
    let mut ports = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        ports.push(socket.local_addr()?.port());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let _ = socket.send_to(&buf[..len], from).await;
            }
        });
    }
    println!("{}", serde_json::json!({ "ports": ports }));
    // Standard input is read on a thread (tokio's stdin is a thread too, behind a feature
    // this crate does not enable); its end, or the time limit, stops the echo.
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = std::io::Read::read(&mut stdin, &mut sink) {
            if n == 0 {
                break;
            }
        }
        let _ = eof_tx.send(());
    });
    let until_eof = eof_rx;
    let _ = tokio::time::timeout(max, until_eof).await;
    Ok(())
}

/// An echo process started by the generator.
pub struct EchoChild {
    child: Child,
    /// Held open: closing it tells the echo to exit.
    stdin: Option<ChildStdin>,
    ip: IpAddr,
    ports: Vec<u16>,
}

impl EchoChild {
    /// Starts `svi-load echo` with `sockets` sockets and waits for its ports.
    pub async fn spawn(sockets: u32, ip: IpAddr) -> Result<EchoChild> {
        let exe = std::env::current_exe().context("own executable")?;
        let mut child = Command::new(exe)
            .args([
                "echo",
                "--sockets",
                &sockets.to_string(),
                "--ip",
                &ip.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the echo baseline")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("echo stdout"))?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        tokio::time::timeout(Duration::from_secs(20), reader.read_line(&mut line))
            .await
            .map_err(|_| anyhow!("the echo baseline did not print its ports within 20 s"))??;
        let v: serde_json::Value = serde_json::from_str(&line).context("echo ports line")?;
        let ports: Vec<u16> = v["ports"]
            .as_array()
            .ok_or_else(|| anyhow!("echo ports line: {line}"))?
            .iter()
            .filter_map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()))
            .collect();
        if ports.len() != sockets as usize {
            bail!("echo opened {} sockets of {sockets}", ports.len());
        }
        let stdin = child.stdin.take();
        Ok(EchoChild {
            child,
            stdin,
            ip,
            ports,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The echo address serving call `call`.
    pub fn port(&self, call: u32) -> Option<SocketAddr> {
        self.ports
            .get(call as usize)
            .map(|&p| SocketAddr::new(self.ip, p))
    }

    /// Closes its input and waits for it to exit (killed after 5 s).
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
