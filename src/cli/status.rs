//! `entrepot status`: asks the running node (its HTTP API) for its peers and, per publisher,
//! its head against the best head any peer announced.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use entrepot::config;

/// Largest answer read from the node.
const ANSWER_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// A GET to the node's own API over loopback (HTTP/1.1, one request per connection).
fn get(listen: &str, path: &str, token: Option<&str>) -> Result<serde_json::Value> {
    request(listen, "GET", path, token, None)
}

/// One request to the node's own API over loopback; the answer must be 200 and JSON.
pub fn request(
    listen: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<serde_json::Value> {
    let addr = listen.replace("0.0.0.0", "127.0.0.1");
    let mut stream = TcpStream::connect(&addr)
        .with_context(|| format!("cannot reach the node's HTTP API on {addr}: is `entrepot run` running?"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let (content, bytes) = match body {
        Some((content_type, bytes)) => {
            (format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", bytes.len()), bytes)
        }
        None => (String::new(), &[][..]),
    };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{content}Connection: close\r\n\r\n")?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    stream.take(ANSWER_MAX_BYTES).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("the node's answer is not HTTP")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("the node answered {}: {body}", head.lines().next().unwrap_or(""));
    }
    // Axum may chunk the body; a JSON document ends at its last closing brace.
    let json = body.find('{').map(|a| &body[a..body.rfind('}').map_or(body.len(), |b| b + 1)]).unwrap_or(body);
    serde_json::from_str(json).context("the node's answer is not JSON")
}

/// The API token of the node in `dir`, when its reads need it or `always`.
pub fn token(dir: &Path, config: &config::Config, always: bool) -> Result<Option<String>> {
    if always || config.http.read_requires_token {
        let path = dir.join(&config.http.token_file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(text.trim().to_owned()))
    } else {
        Ok(None)
    }
}

pub fn status(dir: &Path) -> Result<ExitCode> {
    let config = config::load_config(dir)?;
    let token = token(dir, &config, false)?;
    let view = get(&config.http.listen, "/v1/peers", token.as_deref())?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    println!("node {} on network {}", text(&view["local_peer_id"]), config.network);
    if config.charter.is_some() {
        let c = get(&config.http.listen, "/v1/charter", token.as_deref())?;
        let state = text(&c["state"]);
        println!(
            "charter version {} ({}), expires {}: {}",
            c["version"].as_u64().unwrap_or(0),
            text(&c["hash"]),
            text(&c["expires"]),
            match state.as_str() {
                "expiring_soon" => "EXPIRING SOON: root key holders must sign and publish the next version",
                "expired" => "EXPIRED: no document is accepted until a newer version is in force",
                _ => "valid",
            }
        );
    }
    let forks = get(&config.http.listen, "/v1/forks", token.as_deref())?;
    for f in forks["forks"].as_array().cloned().unwrap_or_default() {
        println!(
            "FORK in {} at #{}: {} and {}{}",
            text(&f["publisher"]),
            f["seq"].as_u64().unwrap_or(0),
            text(&f["kept"]),
            text(&f["conflicting"]),
            if f["resolved"].as_bool() == Some(true) { " (resolved by the charter)" } else { " (feed frozen)" }
        );
    }
    let peers = view["peers"].as_array().cloned().unwrap_or_default();
    println!("{} connected peer(s)", peers.len());
    for p in &peers {
        let org = p["organization"].as_str().map(|o| format!("  {o}")).unwrap_or_default();
        let points = p["penalty_points"].as_u64().unwrap_or(0);
        let points = if points > 0 { format!("  {points} penalty point(s)") } else { String::new() };
        println!("  {}  {}{org}{points}", text(&p["peer_id"]), text(&p["address"]));
    }
    for b in view["banned"].as_array().cloned().unwrap_or_default() {
        println!(
            "BANNED {} for {} ({} s left)",
            text(&b["peer_id"]),
            text(&b["offense"]),
            b["seconds_left"].as_u64().unwrap_or(0)
        );
    }
    println!("{:<12} {:>10} {:>12} {:>8}", "publisher", "our head", "best peer", "lag");
    for l in view["lag"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:<12} {:>10} {:>12} {:>8}",
            text(&l["publisher"]),
            l["local_seq"].as_u64().unwrap_or(0),
            l["best_announced_seq"].as_u64().unwrap_or(0),
            l["lag"].as_u64().unwrap_or(0)
        );
    }
    Ok(ExitCode::SUCCESS)
}
