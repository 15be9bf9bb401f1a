//! A node serving HTTP on loopback for a test, and a minimal blocking HTTP/1.1 client.
//!
//! Why a hand-written client: the tests need to send what a well-behaved client would not
//! (over-long query strings, oversized bodies, odd headers) and to read a Server-Sent Events
//! stream incrementally; a raw `TcpStream` with `Connection: close` does all of it with every
//! read bounded by a timeout, and adds no dependency.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use entrepot::api::{self, ApiAuth};
use entrepot::authority::Organization;
use entrepot::config::{self, InitOptions, Node};
use entrepot::document::OrgId;
use entrepot::service::{Service, Source};

/// Every socket read and write in these tests gives up after this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A node directory serving HTTP on 127.0.0.1 (port chosen by the OS) until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub service: Arc<Service>,
    pub token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// How to make a test node.
pub struct NodeOptions<'a> {
    /// `Some(org)` for a publishing node.
    pub org: Option<&'a str>,
    /// Organizations to trust: (id, signing key).
    pub trust: &'a [(&'a str, &'a ed25519_dalek::SigningKey)],
    pub read_requires_token: bool,
}

/// The name a test keyring gives an organization code: real names for the seed's publishers.
pub fn org_name(id: &str) -> String {
    match id {
        "WCO" => "World Customs Organization".into(),
        "US" => "U.S. Customs and Border Protection".into(),
        other => format!("{other} customs"),
    }
}

pub fn init_node(dir: &Path, opts: &NodeOptions) -> Node {
    let organization = opts.org.map(|o| (OrgId::new(o).unwrap(), format!("{o} customs")));
    let mut node = config::init(
        dir,
        &InitOptions {
            network: crate::common::NETWORK,
            organization,
            http_listen: "127.0.0.1:0",
            ..InitOptions::default()
        },
    )
    .unwrap();
    for (id, key) in opts.trust {
        node.add_organization(Organization {
            id: OrgId::new(id).unwrap(),
            name: org_name(id),
            keys: vec![hex::encode(key.verifying_key().to_bytes())],
            types: None,
        })
        .unwrap();
    }
    node
}

impl TestServer {
    /// Starts a node made with `opts`, seeded with `envelopes` (ingested in order).
    pub fn start(opts: &NodeOptions, envelopes: Vec<Vec<u8>>) -> TestServer {
        TestServer::start_limited(opts, envelopes, api::RateLimit::default())
    }

    /// [`TestServer::start`] with this per-client rate limit.
    pub fn start_limited(opts: &NodeOptions, envelopes: Vec<Vec<u8>>, rate: api::RateLimit) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let node = init_node(&dir.path().join("node"), opts);
        TestServer::serve(dir, node, opts.read_requires_token, envelopes, rate)
    }

    /// A publishing node of `org` (signing with `signing`) on the charter network `genesis`
    /// starts, with nothing stored.
    pub fn start_charter(
        org: &str,
        signing: &ed25519_dalek::SigningKey,
        genesis: &entrepot::charter::SignedCharter,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let node_dir = dir.path().join("node");
        drop(init_node(&node_dir, &NodeOptions { org: Some(org), trust: &[], read_requires_token: false }));
        // `init` made a store bound to the keyring network; this node's network is the genesis hash.
        std::fs::remove_dir_all(node_dir.join("db")).unwrap();
        std::fs::write(node_dir.join("keys/signing.key"), hex::encode(signing.to_bytes())).unwrap();
        std::fs::create_dir(node_dir.join("charter")).unwrap();
        std::fs::write(node_dir.join("charter/v000001.charter"), entrepot::charter::encode(genesis)).unwrap();
        let mut text = std::fs::read_to_string(node_dir.join("config.toml")).unwrap();
        text.push_str(&format!("\n[charter]\ngenesis_hash = \"{}\"\n", genesis.hash()));
        std::fs::write(node_dir.join("config.toml"), text).unwrap();
        let node = config::open(&node_dir).unwrap();
        TestServer::serve(dir, node, false, Vec::new(), api::RateLimit::default())
    }

    fn serve(
        dir: tempfile::TempDir,
        node: Node,
        read_requires_token: bool,
        envelopes: Vec<Vec<u8>>,
        rate: api::RateLimit,
    ) -> TestServer {
        let mut auth_config = node.config.http.clone();
        auth_config.read_requires_token = read_requires_token;
        let token = std::fs::read_to_string(dir.path().join("node").join(&node.config.http.token_file))
            .unwrap()
            .trim()
            .to_owned();
        let auth = ApiAuth::from_config(&dir.path().join("node"), &auth_config).unwrap().with_rate_limit(rate);
        let service = Arc::new(Service::new(node));
        for chunk in envelopes.chunks(1024) {
            for r in service.ingest(chunk.to_vec(), Source::Import).unwrap() {
                r.expect("seed document is stored");
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = service.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let search = entrepot::search::start(svc.clone()).unwrap();
                api::serve(svc, listener, auth, async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
                search.shutdown().await;
            });
        });
        TestServer { addr, service, token, shutdown: Some(tx), thread: Some(thread), _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], &[])
    }

    pub fn get_auth(&self, path: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        request(self.addr, "GET", path, &[("Authorization", &auth)], &[])
    }

    pub fn post(&self, path: &str, body: &[u8], token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        request(self.addr, "POST", path, &headers, body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts a JSON error with this status and returns its code.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", self.headers);
        let v = self.json();
        let message = v["error"]["message"].as_str().unwrap_or_else(|| panic!("no error.message: {v}"));
        assert!(!message.is_empty());
        v["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code: {v}")).to_owned()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn write_request(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body: not an error here.
    let _ = stream.write_all(body);
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if n == 0 {
            return body;
        }
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk).unwrap();
        body.extend_from_slice(&chunk[..n]);
    }
}

/// One request on a fresh connection; the whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = connect(addr);
    write_request(&mut stream, method, path, headers, body);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut b = vec![0; len];
        reader.read_exact(&mut b).unwrap();
        b
    } else {
        let mut b = Vec::new();
        reader.read_to_end(&mut b).unwrap();
        b
    };
    Response { status, headers, body }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// An open event stream, read incrementally.
pub struct SseStream {
    pub status: u16,
    reader: BufReader<TcpStream>,
    chunked: bool,
    pending: String,
}

impl SseStream {
    /// Opens `path` with extra headers.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseStream {
        let mut stream = connect(addr);
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        write_request(&mut stream, "GET", path, &all, &[]);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        SseStream { status, reader, chunked, pending: String::new() }
    }

    fn more(&mut self) {
        if self.chunked {
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            assert!(n > 0, "the stream ended");
            let mut chunk = vec![0; n + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            self.pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
        } else {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "the stream ended");
            self.pending.push_str(&line);
        }
    }

    /// The next event with data (keep-alive comments are skipped); panics after the read timeout.
    pub fn next_event(&mut self) -> SseEvent {
        loop {
            while let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending[..end].to_owned();
                self.pending.drain(..end + 2);
                let mut ev = SseEvent { id: None, event: None, data: String::new() };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        ev.data.push_str(v.trim_start());
                    }
                }
                if !ev.data.is_empty() {
                    return ev;
                }
            }
            self.more();
        }
    }
}
