//! The README's "Operating a charter network", run as written: every indented block of the
//! section, in order, through `sh` with the built binary first on `PATH`. A block after a line
//! ending in "`FILE`:" is a file to write (the genesis input, a new member); any other is shell
//! commands. A command's `# prints <NAME>` comment binds the placeholder `<NAME>` to the last
//! word it prints, for the steps after it; `entrepot --dir NODE run` starts that node in the
//! background. The only change made to the text is the ports: the README's 8080, 8081, 4001
//! and 4002 become free ones, so that tests can run side by side.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs::{free_port, get_json};

/// One indented block of the section.
#[derive(Debug)]
enum Block {
    /// Commands (a line ending in `\` continues on the next).
    Shell(Vec<String>),
    /// A file to write, with its text.
    File { name: String, text: String },
}

/// The indented blocks of README.md's "Operating a charter network", in order.
fn readme_blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("\n## Operating a charter network\n").expect("README has the operator section");
    let rest = &readme[start + 1..];
    let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut prose = "";
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("       ") || line.trim().is_empty() {
            if !line.trim().is_empty() {
                prose = line.trim();
            }
            continue;
        }
        let mut block = vec![line];
        while let Some(next) = lines.next_if(|l| l.starts_with("       ") && !l.trim().is_empty()) {
            block.push(next);
        }
        let indent = block.iter().map(|l| l.len() - l.trim_start().len()).min().unwrap();
        let block: Vec<String> = block.iter().map(|l| l[indent..].to_owned()).collect();
        match file_named_by(prose) {
            Some(name) => blocks.push(Block::File { name, text: block.join("\n") + "\n" }),
            None => blocks.push(Block::Shell(block)),
        }
    }
    blocks
}

/// The file a prose line ending in "`NAME`:" introduces.
fn file_named_by(prose: &str) -> Option<String> {
    let name = prose.strip_suffix("`:")?.rsplit_once('`')?.1;
    let is_path = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    is_path.then(|| name.to_owned())
}

/// Commands of a shell block: continued lines joined (as `sh` would join them).
fn commands(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "a block ends in a continued line: {current}");
    out
}

/// Replaces every `<NAME>` with what an earlier step printed; a placeholder no step has
/// printed yet is a README that cannot be followed in order.
fn substitute(text: &str, values: &BTreeMap<String, String>, ports: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in ports {
        out = out.replace(from, to);
    }
    while let Some(open) = out.find('<') {
        let close = open + out[open..].find('>').expect("a closed placeholder");
        let name = &out[open + 1..close];
        let value = values.get(name).unwrap_or_else(|| panic!("the README uses <{name}> before a step prints it"));
        out = format!("{}{}{}", &out[..open], value, &out[close + 1..]);
    }
    out
}

/// A node started by the README, killed when the test ends.
pub struct Running {
    pub name: String,
    pub child: Child,
}

impl Running {
    /// Sends a signal (`HUP`, `TERM`, …) to the node.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shell(cwd: &Path, command: &str) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_entrepot")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).current_dir(cwd).env("PATH", path).env_remove("ENTREPOT_DIR").env("NO_COLOR", "1");
    cmd
}

/// Starts `entrepot --dir NODE run` (logging at `level` to `cwd/NODE.log`) and waits (≤ 30 s)
/// until it serves HTTP.
pub fn start(cwd: &Path, command: &str, level: &str) -> Running {
    let name = command.split_whitespace().nth(2).unwrap().to_owned();
    let log = std::fs::File::create(cwd.join(format!("{name}.log"))).unwrap();
    let mut child = shell(cwd, &format!("exec {command}"))
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("serving http://") {
                let _ = tx.send(());
            }
        }
    });
    let running = Running { name, child };
    assert!(
        rx.recv_timeout(Duration::from_secs(30)).is_ok(),
        "`{command}` did not start serving: {}",
        std::fs::read_to_string(cwd.join(format!("{}.log", running.name))).unwrap_or_default()
    );
    running
}

/// Polls `check` every 200 ms for at most `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn the_readme_operator_steps_run_as_written_and_the_two_nodes_admit_each_other_and_replicate() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (http_wco, http_fr) = (free_port(), free_port());
    let ports = [
        ("127.0.0.1:8080", format!("127.0.0.1:{http_wco}")),
        ("127.0.0.1:8081", format!("127.0.0.1:{http_fr}")),
        ("tcp/4001", format!("tcp/{}", free_port())),
        ("tcp/4002", format!("tcp/{}", free_port())),
    ];
    let blocks = readme_blocks();
    let files: Vec<&str> = blocks
        .iter()
        .filter_map(|b| if let Block::File { name, .. } = b { Some(name.as_str()) } else { None })
        .collect();
    assert_eq!(files, ["genesis.json", "opinion.json", "be.json"], "the files the README has the operator write");

    let mut values = BTreeMap::new();
    let mut running = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        match block {
            Block::File { name, text } => std::fs::write(cwd.join(name), substitute(text, &values, &ports)).unwrap(),
            Block::Shell(lines) => {
                for line in commands(lines) {
                    let (command, comment) = line.split_once(" #").unwrap_or((&line, ""));
                    let command = substitute(command.trim(), &values, &ports);
                    ran += 1;
                    if command.ends_with(" run") {
                        running.push(start(cwd, &command, "warn"));
                        continue;
                    }
                    let out = shell(cwd, &command).output().unwrap();
                    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                    assert!(
                        out.status.success(),
                        "README step `{command}` failed:\n{stdout}{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if let Some(name) = comment.split_once("prints <").and_then(|(_, r)| r.split_once('>')) {
                        let value = stdout.split_whitespace().last().expect("the step prints a value").to_owned();
                        values.insert(name.0.to_owned(), value);
                    }
                }
            }
        }
    }
    assert!(ran >= 20, "only {ran} commands found in the README section");
    assert_eq!(running.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["wco", "fr"]);

    let wco: SocketAddr = format!("127.0.0.1:{http_wco}").parse().unwrap();
    let fr: SocketAddr = format!("127.0.0.1:{http_fr}").parse().unwrap();
    let log = |n: &str| std::fs::read_to_string(cwd.join(format!("{n}.log"))).unwrap_or_default();
    // Each admits the other by its certificate: the WCO's node as WCO, the replica as FR.
    let admitted = |at: SocketAddr, peer: &str, org: &str| {
        get_json(at, "/v1/peers").is_some_and(|p| {
            p["peers"].as_array().is_some_and(|peers| {
                peers.iter().any(|x| x["peer_id"] == peer && x["admitted"] == true && x["organization"] == org)
            })
        })
    };
    assert!(
        eventually(Duration::from_secs(60), || admitted(fr, &values["WCO PEER ID"], "WCO")
            && admitted(wco, &values["FR PEER ID"], "FR")),
        "the nodes did not admit each other:\nwco: {}\nfr: {}",
        log("wco"),
        log("fr")
    );
    // The opinion published before the nodes ran reaches the replica, verified.
    let replicated = || {
        get_json(fr, "/v1/documents?type=classification.opinion")
            .is_some_and(|l| l["documents"].as_array().is_some_and(|d| d.len() == 1 && d[0]["publisher"] == "WCO"))
    };
    assert!(eventually(Duration::from_secs(60), replicated), "the opinion did not replicate:\n{}", log("fr"));
    // Version 2, published to the WCO's node, reaches the replica by itself, with Belgium in it.
    let version = |at: SocketAddr| get_json(at, "/v1/charter").and_then(|c| c["version"].as_u64());
    assert_eq!(version(wco), Some(2));
    assert!(
        eventually(Duration::from_secs(60), || version(fr) == Some(2)),
        "fr did not take version 2:\n{}",
        log("fr")
    );
    let charter = get_json(fr, "/v1/charter").unwrap();
    assert_eq!(charter["organizations"], 3, "{charter}");
    assert_eq!(charter["expires"], "2036-12-31T00:00:00Z", "{charter}");
}
