//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`):
//! open a page, wait until a condition holds in it, read its DOM, take a screenshot.
//!
//! Why the protocol rather than `--dump-dom` with `--virtual-time-budget`: the page keeps an
//! event stream open, and virtual time never runs out while a request is pending, so a dump
//! would wait for ever; and a page that updates live can only be checked by reading it again
//! after something happened. Chromium reads commands on fd 3 and writes answers on fd 4, NUL
//! between messages; `sh` maps them onto the child's stdin and stdout, so no unsafe `pre_exec`
//! is needed. Every wait is bounded by [`BROWSER_TIMEOUT`].
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any wait on the browser may take (a page to be ready, a condition to hold).
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a condition is checked again while waiting for it.
const POLL: Duration = Duration::from_millis(100);
/// The largest protocol message read (a screenshot of a long page is a few MB of base64).
const MESSAGE_MAX_BYTES: usize = 64 << 20;

/// Whether the browser test can run: Chromium is installed, or the test is skipped with a
/// message (CI must have it: it fails there).
pub fn chromium_available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium) for the browser test");
    }
    println!("skipped: {CHROMIUM} is missing; install it with `apt-get install -y chromium` to run the browser test");
    false
}

/// A running headless Chromium, closed on drop.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// A page (tab) of the browser, with the protocol session attached to it.
pub struct Page {
    session: String,
    target: String,
}

impl Browser {
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let commands = child.stdin.take().unwrap();
        let mut answers = child.stdout.take().unwrap();
        // Reads NUL-separated messages on a thread, so a wait can give up at its deadline.
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                let n = match answers.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|b| *b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&message[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
                assert!(pending.len() <= MESSAGE_MAX_BYTES, "a DevTools message past {MESSAGE_MAX_BYTES} bytes");
            }
        });
        Browser { child, commands, messages, next_id: 1, _profile: profile }
    }

    /// Sends a command (on `session`, or to the browser) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params).unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Sends a command and returns its result, or the error Chromium answered.
    fn try_call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("chromium reads commands");
        self.commands.flush().unwrap();
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} within {BROWSER_TIMEOUT:?}"));
            if m["id"] == json!(id) {
                return match m.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(m["result"].clone()),
                };
            }
        }
    }

    /// Opens `url` in a new page.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = self.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        let page =
            Page { session: attached["sessionId"].as_str().expect("a session id").to_owned(), target: target_id };
        self.call(
            Some(&page.session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        );
        self.call(Some(&page.session), "Page.navigate", json!({ "url": url }));
        page
    }

    /// Closes `page` (and the event stream it holds open).
    pub fn close(&mut self, page: Page) {
        self.call(None, "Target.closeTarget", json!({ "targetId": page.target }));
    }

    /// The value of a JavaScript expression in `page` (awaited if it is a promise).
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let r = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression} threw: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true in `page`; panics with `what`
    /// and the page's text if it is not within [`BROWSER_TIMEOUT`].
    pub fn wait_for(&mut self, page: &Page, condition: &str, what: &str) {
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        let check = format!("(() => {{ try {{ return !!({condition}); }} catch (_) {{ return false; }} }})()");
        while Instant::now() < deadline {
            // During a navigation (a view that redirects) the page has no context to evaluate in.
            let r = self.try_call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": check, "returnByValue": true }),
            );
            if r.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            std::thread::sleep(POLL);
        }
        let text = self.eval(page, "document.body ? document.body.innerText : ''");
        panic!("{what}: `{condition}` did not hold within {BROWSER_TIMEOUT:?}; the page reads:\n{text}");
    }

    /// The page's DOM as HTML.
    pub fn dom(&mut self, page: &Page) -> String {
        let v = self.eval(page, "'<!DOCTYPE html>\\n' + document.documentElement.outerHTML");
        v.as_str().expect("the DOM is a string").to_owned()
    }

    /// Saves a PNG screenshot of the whole page to `file`.
    pub fn screenshot(&mut self, page: &Page, file: &Path) {
        let m = self.call(Some(&page.session), "Page.getLayoutMetrics", json!({}));
        let size = &m["cssContentSize"];
        let (w, h) = (size["width"].as_f64().unwrap_or(1280.0), size["height"].as_f64().unwrap_or(900.0).min(8000.0));
        let r = self.call(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true, "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 } }),
        );
        let png =
            base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("screenshot data")).unwrap();
        std::fs::write(file, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let id = self.next_id;
        let close = format!("{}\0", json!({ "id": id, "method": "Browser.close" }));
        let _ = self.commands.write_all(close.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
