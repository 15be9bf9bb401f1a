//! `entrepot run` processes with fixed addresses, driven through a tolerant HTTP client: in
//! fault tests a request may meet a dead node, which is an outcome, not a test failure.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entrepot::authority::Organization;
use entrepot::config::{self, InitOptions};
use entrepot::document::OrgId;
use serde_json::Value;

/// A node directory with fixed listen addresses, so a restarted node is found where it was.
#[derive(Clone, Debug)]
pub struct NodeDir {
    pub dir: PathBuf,
    pub http: SocketAddr,
    /// The full dialable address, `/ip4/…/tcp/…/p2p/PEER`.
    pub p2p: String,
    pub peer_id: String,
    pub token: String,
}

/// A free TCP port on loopback (bound, then released).
/// A port free now, for a node to listen on. Taken below Linux's ephemeral range
/// (32768–60999): a port the kernel handed out as free could otherwise become the source port
/// of another test's outgoing connection before the node binds it (a node of
/// engine_faults.rs once failed to start so). Ports are handed out once per test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// Creates node directories, `publishers` first; every node trusts every publisher. `hosts[i]`
/// is node i's IPv4 address, with its p2p and HTTP ports.
pub fn init_nodes(
    root: &Path,
    network: &str,
    publishers: &[&str],
    replicas: &[&str],
    hosts: &[(String, u16, u16)],
) -> Vec<NodeDir> {
    let mut out = Vec::new();
    let mut keys = Vec::new();
    for (i, name) in publishers.iter().chain(replicas).enumerate() {
        let dir = root.join(name);
        let (ip, p2p_port, http_port) = &hosts[i];
        let organization = publishers.contains(name).then(|| (OrgId::new(name).unwrap(), name.to_string()));
        let p2p_listen = format!("/ip4/{ip}/tcp/{p2p_port}");
        let http_listen = format!("{ip}:{http_port}");
        let options = InitOptions {
            network,
            organization,
            p2p_listen: &p2p_listen,
            http_listen: &http_listen,
            bootstrap: &[],
            charter: None,
        };
        let node = config::init(&dir, &options).unwrap();
        if let Some(p) = &node.publisher {
            keys.push((p.org.clone(), hex::encode(p.public_key())));
        }
        let peer_id = entrepot::net::load_identity(&dir.join("keys/node.key")).unwrap().public().to_peer_id();
        let token = std::fs::read_to_string(dir.join("keys/api.token")).unwrap().trim().to_owned();
        out.push(NodeDir {
            dir,
            http: http_listen.parse().unwrap(),
            p2p: format!("{p2p_listen}/p2p/{peer_id}"),
            peer_id: peer_id.to_string(),
            token,
        });
    }
    for n in &out {
        let mut node = config::open(&n.dir).unwrap();
        for (org, key) in &keys {
            let o = Organization { id: org.clone(), name: org.to_string(), keys: vec![key.clone()], types: None };
            node.add_organization(o).unwrap();
        }
    }
    out
}

/// Writes `bootstrap` into a node's config.
pub fn set_bootstrap(node: &NodeDir, bootstrap: &[String]) {
    let config = node.dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let list = bootstrap.iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ");
    let text = text
        .lines()
        .map(|l| if l.starts_with("bootstrap = ") { format!("bootstrap = [{list}]") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text + "\n").unwrap();
}

/// A running `entrepot run`, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// Starts `prefix… entrepot --dir DIR run` and waits (≤ 30 s) until it serves HTTP.
    pub fn start(node: &NodeDir, prefix: &[&str]) -> Proc {
        Proc::launch(node, prefix, Stdio::null())
    }

    /// Like [`Proc::start`], with the node's log (warnings and errors) written to `log`.
    pub fn start_logged(node: &NodeDir, log: &Path) -> Proc {
        Proc::launch(node, &[], Stdio::from(std::fs::File::create(log).unwrap()))
    }

    fn launch(node: &NodeDir, prefix: &[&str], stderr: Stdio) -> Proc {
        let bin = crate::common::bin();
        let mut cmd = if prefix.is_empty() { Command::new(bin) } else { Command::new(prefix[0]) };
        if !prefix.is_empty() {
            cmd.args(&prefix[1..]).arg(bin);
        }
        let mut child = cmd
            .arg("--dir")
            .arg(&node.dir)
            .arg("run")
            .env("RUST_LOG", std::env::var("ENTREPOT_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("serving http://") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not start serving within 30 s", node.dir.display());
        }
        Proc { child }
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`, …) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; true when the node exits cleanly within 15 s.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; `None` when the node is unreachable or the
/// answer is cut. Every socket operation is bounded by `timeout`.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let len = usize::from_str_radix(std::str::from_utf8(&b[..eol]).ok()?.trim(), 16).ok()?;
        if len == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(eol + 2..eol + 2 + len)?);
        b = b.get(eol + 4 + len..)?;
    }
}

/// GET returning JSON, `None` unless the node answers 200.
pub fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    match try_request(addr, "GET", path, None, b"", Duration::from_secs(10))? {
        (200, body) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// The `feeds` array of `/v1/feeds`.
pub fn feeds(addr: SocketAddr) -> Option<Value> {
    get_json(addr, "/v1/feeds").map(|v| v["feeds"].clone())
}

/// Publishes one classification opinion; `Some(id)` when the node answered 201.
pub fn publish_one(node: &NodeDir, n: usize) -> Option<String> {
    let body = crate::common::opinion(n, "8806.22").body.to_string();
    let (status, body) = try_request(
        node.http,
        "POST",
        "/v1/documents?type=classification.opinion",
        Some(&node.token),
        body.as_bytes(),
        Duration::from_secs(10),
    )?;
    if status != 201 {
        return None;
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    v["id"].as_str().map(str::to_owned)
}

/// A small deterministic generator (xorshift), so a failing schedule can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
