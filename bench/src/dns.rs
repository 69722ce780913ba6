//! `dns`: Slate's filtering resolver against unbound and dnsmasq (Debian's packages), each
//! loaded with the same generated block list of a million domains and driven by dnsperf on
//! 127.0.0.1 with the same queries (blocked names, and allowed names that are cached).
//!
//! Everything listens on loopback; all three forward to one fixed-answer upstream that this
//! process starts on loopback, so no query ever leaves the machine.

use anyhow::{bail, Context};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use slate_filter::bench::{build_filter, generate_list_text, generated_name};
use slate_filter::server::{Config, DnsServer, FixedUpstream, SystemClock};
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Allowed names in the query mix: few enough that every resolver answers them from its cache.
const ALLOWED_NAMES: usize = 100;

pub fn run(domains: usize, seconds: u32) -> anyhow::Result<()> {
    for tool in ["unbound", "dnsmasq", "dnsperf"] {
        if which(tool).is_none() {
            bail!("{tool} is missing: apt-get install unbound dnsmasq-base dnsperf");
        }
    }
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(dir.path(), domains, seconds))
}

async fn bench(dir: &Path, domains: usize, seconds: u32) -> anyhow::Result<()> {
    println!("dns: {domains} generated block-list domains, dnsperf {seconds} s per resolver on 127.0.0.1");
    let list = generate_list_text(domains);
    let upstream =
        FixedUpstream::start("127.0.0.1:0".parse()?, Vec::new(), Some([192, 0, 2, 1].into()))
            .await?;
    let upstream_addr = upstream.local_addr();

    let queries = dir.join("queries.txt");
    std::fs::write(&queries, query_mix(domains))?;

    // Slate: the real filter and server, in this process.
    let (filter, figure) = build_filter(&list, domains);
    let (slate, mut block_events) = DnsServer::start(
        &Config::new("127.0.0.1:0".parse()?, vec![upstream_addr]),
        filter,
        Arc::new(SystemClock),
    )
    .await?;
    // On a device these go to slated; here they are taken off the queue and dropped, so the
    // figure includes queueing them but not a full queue's drop path.
    tokio::spawn(async move { while block_events.recv().await.is_some() {} });
    let slate_addr = slate.local_addr();
    let serving = tokio::spawn(slate.run_until(std::future::pending()));
    println!(
        "slate: {} rules, {} bytes ({:.1} bytes/domain), loaded in {} ms",
        figure.rules,
        figure.heap_bytes,
        figure.bytes_per_domain(),
        figure.load.as_millis()
    );
    let slate_qps = dnsperf(slate_addr, &queries, seconds).await?;

    let unbound_port = free_port()?;
    let unbound_conf = dir.join("unbound.conf");
    std::fs::write(&unbound_conf, unbound_config(&list, unbound_port, upstream_addr))?;
    let mut unbound = Command::new(which("unbound").unwrap());
    unbound.arg("-d").arg("-c").arg(&unbound_conf);
    let (unbound, unbound_load) = start_resolver("unbound", unbound, unbound_port).await?;
    let unbound_qps = dnsperf(unbound.addr, &queries, seconds).await?;
    drop(unbound);

    let dnsmasq_port = free_port()?;
    let dnsmasq_conf = dir.join("dnsmasq.conf");
    std::fs::write(&dnsmasq_conf, dnsmasq_config(&list, dnsmasq_port, upstream_addr))?;
    let mut dnsmasq = Command::new(which("dnsmasq").unwrap());
    dnsmasq.arg("--keep-in-foreground").arg(format!("--conf-file={}", dnsmasq_conf.display()));
    let (dnsmasq, dnsmasq_load) = start_resolver("dnsmasq", dnsmasq, dnsmasq_port).await?;
    let dnsmasq_qps = dnsperf(dnsmasq.addr, &queries, seconds).await?;
    drop(dnsmasq);

    serving.abort();
    upstream.shutdown().await?;
    println!(
        "load until answering: unbound {} ms, dnsmasq {} ms (slate's filter build above)",
        unbound_load.as_millis(),
        dnsmasq_load.as_millis()
    );
    println!(
        "dns_qps slate={slate_qps:.0} unbound={unbound_qps:.0} dnsmasq={dnsmasq_qps:.0} bytes_per_domain={:.1} load_ms={}",
        figure.bytes_per_domain(),
        figure.load.as_millis()
    );
    Ok(())
}

/// dnsperf's input: every fifth query an allowed (cached) name, the rest blocked ones.
fn query_mix(domains: usize) -> String {
    let mut text = String::new();
    for i in 0..50_000usize {
        let name = if i % 5 == 0 {
            format!("allowed{}.example", i % ALLOWED_NAMES)
        } else {
            generated_name((i * 7919) % domains, false)
        };
        let _ = writeln!(text, "{name} A");
    }
    text
}

/// unbound: every rule an `always_nxdomain` local zone (a zone covers its subdomains, which is
/// a wildcard rule's meaning; exact rules are written the same way, a slight over-match).
fn unbound_config(list: &str, port: u16, upstream: SocketAddr) -> String {
    let mut conf = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
         \x20 directory: \"\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n\
         \x20 access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  num-threads: 1\n\
         \x20 module-config: \"iterator\"\n  auto-trust-anchor-file: \"\"\n"
    );
    for rule in list.lines() {
        let _ =
            writeln!(conf, "  local-zone: \"{}.\" always_nxdomain", rule.trim_start_matches("*."));
    }
    let _ = write!(
        conf,
        "forward-zone:\n  name: \".\"\n  forward-addr: {}@{}\n",
        upstream.ip(),
        upstream.port()
    );
    conf
}

/// dnsmasq: `address=/name/` answers NXDOMAIN for the name and everything under it.
fn dnsmasq_config(list: &str, port: u16, upstream: SocketAddr) -> String {
    let mut conf = format!(
        "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nuser=root\n\
         pid-file=\nserver={}#{}\ncache-size=10000\n",
        upstream.ip(),
        upstream.port()
    );
    for rule in list.lines() {
        let _ = writeln!(conf, "address=/{}/", rule.trim_start_matches("*."));
    }
    conf
}

/// A resolver process, killed when dropped.
struct Resolver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a resolver and returns it with how long it took until it answered a query.
async fn start_resolver(
    what: &str,
    mut command: Command,
    port: u16,
) -> anyhow::Result<(Resolver, Duration)> {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {what}"))?;
    let mut resolver = Resolver { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
    let probe = UdpSocket::bind("127.0.0.1:0")?;
    probe.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii("probe.example.")?, RecordType::A));
    let query = query.to_vec()?;
    let mut buf = [0u8; 1500];
    loop {
        if let Some(status) = resolver.child.try_wait()? {
            bail!("{what} exited with {status} before answering");
        }
        probe.send_to(&query, resolver.addr)?;
        if probe.recv(&mut buf).is_ok() {
            return Ok((resolver, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("{what} did not answer within 300 s");
        }
    }
}

/// Runs dnsperf against `server` and returns its queries per second.
async fn dnsperf(server: SocketAddr, queries: &Path, seconds: u32) -> anyhow::Result<f64> {
    let output = tokio::process::Command::new("dnsperf")
        .args(["-s", &server.ip().to_string(), "-p", &server.port().to_string()])
        .arg("-d")
        .arg(queries)
        .args(["-l", &seconds.to_string(), "-c", "4", "-Q", "200000"])
        .output()
        .await
        .context("run dnsperf")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if let Some(lost) = text.lines().find(|l| l.contains("Queries lost:")) {
        println!("dnsperf {server}: {}", lost.trim());
    }
    let qps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Queries per second:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| {
            format!("dnsperf printed no rate:\n{text}{}", String::from_utf8_lossy(&output.stderr))
        })?;
    Ok(qps)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_block_every_rule_and_forward_to_the_upstream() {
        let list = "*.a.test\nb.test\n";
        let upstream: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let unbound = unbound_config(list, 1053, upstream);
        assert!(unbound.contains("local-zone: \"a.test.\" always_nxdomain"));
        assert!(unbound.contains("local-zone: \"b.test.\" always_nxdomain"));
        assert!(unbound.contains("forward-addr: 127.0.0.1@5353"));
        let dnsmasq = dnsmasq_config(list, 1054, upstream);
        assert!(dnsmasq.contains("address=/a.test/\naddress=/b.test/\n"));
        assert!(dnsmasq.contains("server=127.0.0.1#5353"));
    }

    #[test]
    fn the_query_mix_is_four_fifths_blocked_names() {
        let mix = query_mix(1000);
        let allowed = mix.lines().filter(|l| l.starts_with("allowed")).count();
        assert_eq!(allowed, 10_000);
        assert_eq!(mix.lines().count(), 50_000);
    }
}
